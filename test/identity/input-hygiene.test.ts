import { Code, ConnectError } from '@connectrpc/connect';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, startTestIdentity, TEST_PASSWORD, type Clients, type TestIdentity } from '../helpers/identity.js';

/** docs/security.md X1, X2 against the whole service: emails have one form, and bad strings are caller mistakes. */

const ADMIN_EMAIL = `hygiene-admin-${randomBytes(4).toString('hex')}@example.test`;
const ADMIN_PASSWORD = 'hygiene-admin-bootstrap-8812-kq';
const tag = () => randomBytes(4).toString('hex');

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const ce = ConnectError.from(e);
    return `${Code[ce.code]}: ${ce.rawMessage}`;
  }
}

describe('input hygiene at the edge (X1, X2)', () => {
  let t: TestIdentity;
  let adminToken: string;
  let transports: [string, Clients][];

  beforeAll(async () => {
    t = await startTestIdentity({ env: { ADMIN_EMAIL, ADMIN_PASSWORD, SIGNUP_MAX_PER_IP: '1000' } });
    transports = [['grpc', t.grpc], ['connect', t.connect], ['grpc-web', t.web]];
    const first = await t.grpc.auth.login({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    if (first.result.case !== 'session') throw new Error('expected a session');
    const changed = await t.grpc.auth.changePassword(
      { currentPassword: ADMIN_PASSWORD, newPassword: 'hygiene-admin-changed-4471-zz' },
      bearer(first.result.value.accessToken),
    );
    adminToken = changed.session!.accessToken;
  });
  afterAll(() => t?.stop());

  it('answers NUL in email (Register, Login) and email_prefix (ListUsers) with INVALID_ARGUMENT on every transport', async () => {
    for (const [name, c] of transports) {
      const email = `x\u0000y-${tag()}@example.com`;
      expect(await outcome(c.auth.register({ email, password: TEST_PASSWORD })), name).toBe(
        'InvalidArgument: email: must not contain control or invisible formatting characters',
      );
      expect(await outcome(c.auth.login({ email, password: TEST_PASSWORD })), name).toBe(
        'InvalidArgument: email: must not contain control or invisible formatting characters',
      );
      expect(await outcome(c.admin.listUsers({ emailPrefix: 'x\u0000' }, bearer(adminToken))), name).toBe(
        'InvalidArgument: email_prefix: must not contain control or invisible formatting characters',
      );
    }
    // Never a server fault: nothing at error level.
    expect(t.logs()).not.toMatch(/"level":50/);
  });

  it('makes composed and decomposed spellings one account', async () => {
    const local = `j\u00e4ger-${tag()}`;
    const composed = `${local}@example.com`;
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    const reg = await t.grpc.auth.register({ email: decomposed, password: TEST_PASSWORD });
    expect(reg.user?.email).toBe(composed);
    expect(await outcome(t.connect.auth.register({ email: composed, password: TEST_PASSWORD }))).toBe(
      'AlreadyExists: an account with this email already exists',
    );
    for (const spelling of [composed, decomposed, `  ${composed.toUpperCase()} `]) {
      const r = await t.web.auth.login({ email: spelling, password: TEST_PASSWORD });
      expect(r.result.case).toBe('session');
    }
  });

  it('stores the domain as lower-case A-labels, reached by either spelling', async () => {
    const local = `ada-${tag()}`;
    const reg = await t.grpc.auth.register({ email: `${local}@BÜCHER.example`, password: TEST_PASSWORD });
    expect(reg.user?.email).toBe(`${local}@xn--bcher-kva.example`);
    expect(await outcome(t.grpc.auth.register({ email: `${local}@xn--bcher-kva.example`, password: TEST_PASSWORD }))).toMatch(/^AlreadyExists/);
    expect((await t.grpc.auth.login({ email: `${local}@bücher.example`, password: TEST_PASSWORD })).result.case).toBe('session');
  });

  it.each([
    ['a zero-width space', `zw\u200bsp-@example.com`, /control or invisible/],
    ['a soft hyphen', `soft\u00adhy-@example.com`, /control or invisible/],
    ['a bidi override', `bidi\u202e-@example.com`, /control or invisible/],
    ['a fullwidth letter', `ｆull-@example.com`, /compatibility characters such as fullwidth/],
    ['markup', `<script>-@example.com`, /the part before @ may only contain/],
    ['a 64-character domain label', `long-@${'a'.repeat(64)}.com`, /at most 63 characters/],
  ])('refuses an email with %s as INVALID_ARGUMENT, never storing it', async (_what, email, message) => {
    for (const [name, c] of transports) {
      const got = await outcome(c.auth.register({ email: email.replace('-@', `-${tag()}@`), password: TEST_PASSWORD }));
      expect(got, name).toMatch(/^InvalidArgument: email: /);
      expect(got, name).toMatch(message);
    }
  });
});
