import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, signUp, startTestIdentity, type Clients, type TestIdentity } from '../helpers/identity.js';

const codeOf = (e: unknown) => ConnectError.from(e).code;
const hasOathtool = existsSync('/usr/bin/oathtool');
if (!hasOathtool && process.env.CI === 'true') throw new Error('oathtool is required under CI (Debian package oathtool)');

/** A code from oathtool (an independent RFC 6238 implementation), `offsetSteps` steps from now. */
function oathtool(secret: string, offsetSteps = 0): string {
  const at = Math.floor(Date.now() / 1000) + offsetSteps * 30;
  return execFileSync('/usr/bin/oathtool', ['--totp', '-b', secret, '-N', `@${at}`], { encoding: 'utf8' }).trim();
}

function secretFromUri(uri: string): string {
  const u = new URL(uri);
  expect(u.protocol).toBe('otpauth:');
  return u.searchParams.get('secret')!;
}

async function enroll(c: Clients) {
  const u = await signUp(c);
  const begin = await c.auth.beginTotpEnrollment({ currentPassword: u.password }, bearer(u.session.accessToken));
  const secret = secretFromUri(begin.otpauthUri);
  expect(secret).toBe(begin.secret);
  const confirm = await c.auth.confirmTotpEnrollment({ code: oathtool(secret) }, bearer(u.session.accessToken));
  expect(confirm.backupCodes).toHaveLength(10);
  return { ...u, secret, backupCodes: confirm.backupCodes };
}

async function challenge(c: Clients, email: string, password: string) {
  const res = await c.auth.login({ email, password });
  if (res.result.case !== 'mfaChallenge') throw new Error(`expected an MFA challenge, got ${res.result.case}`);
  return res.result.value;
}

describe.skipIf(!hasOathtool)(`second factor end to end${hasOathtool ? '' : ' [skipped: oathtool not installed]'}`, () => {
  let a: TestIdentity;
  let b: TestIdentity;
  beforeAll(async () => {
    a = await startTestIdentity();
    b = await startTestIdentity({ databaseUrl: a.databaseUrl });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  const introspect = (t: TestIdentity, token: string) => t.grpc.introspection.introspect({ token }, bearer(t.introspectionSecret));

  for (const [name, pick] of [
    ['gRPC', (t: TestIdentity) => t.grpc],
    ['Connect', (t: TestIdentity) => t.connect],
  ] as const) {
    it(`${name}: enroll, sign in with an oathtool code, and a reused code is refused`, async () => {
      const c = pick(a);
      const u = await enroll(c);
      expect((await c.auth.getCurrentUser({}, bearer(u.session.accessToken))).user?.totpEnabled).toBe(true);
      const ch = await challenge(c, u.email, u.password);
      expect(ch.methods).toEqual(['totp', 'backup_code']);
      // The confirming code's step is consumed (M4); the next step is still inside the ±1 window.
      const code = oathtool(u.secret, 1);
      const done = await c.auth.completeMfa({ challengeToken: ch.challengeToken, code: { case: 'totpCode', value: code } });
      const info = await introspect(a, done.session!.accessToken);
      expect(info.active).toBe(true);
      expect(info.amr).toEqual(['pwd', 'otp']);
      // Replay of the same code with a fresh challenge, on either replica.
      for (const t of [a, b]) {
        const again = await challenge(pick(t), u.email, u.password);
        const err = await pick(t).auth.completeMfa({ challengeToken: again.challengeToken, code: { case: 'totpCode', value: code } }).catch((e) => e);
        expect(codeOf(err)).toBe(Code.Unauthenticated);
      }
    });
  }

  it('10 parallel submissions of one code to two replicas → exactly 1 session', async () => {
    const u = await enroll(a.grpc);
    const challenges = await Promise.all(Array.from({ length: 10 }, (_, i) => challenge((i % 2 ? b : a).grpc, u.email, u.password)));
    const code = oathtool(u.secret, 1);
    const results = await Promise.allSettled(
      challenges.map((ch, i) => (i % 2 ? b : a).grpc.auth.completeMfa({ challengeToken: ch.challengeToken, code: { case: 'totpCode', value: code } })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(codeOf(r.reason)).toBe(Code.Unauthenticated);
  });

  it('a backup code works once; the challenge is single use and is not an access or refresh token', async () => {
    const u = await enroll(a.connect);
    const ch = await challenge(a.connect, u.email, u.password);
    // M6 / done-when 4: a challenge is not an access token, not a refresh token.
    expect((await introspect(a, ch.challengeToken)).active).toBe(false);
    expect(codeOf(await a.grpc.auth.getCurrentUser({}, bearer(ch.challengeToken)).catch((e) => e))).toBe(Code.Unauthenticated);
    expect(codeOf(await a.grpc.auth.refresh({ refreshToken: ch.challengeToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    // And an access token is not a challenge.
    expect(codeOf(await a.grpc.auth.completeMfa({ challengeToken: u.session.accessToken, code: { case: 'totpCode', value: '123456' } }).catch((e) => e))).toBe(Code.Unauthenticated);

    const done = await a.connect.auth.completeMfa({ challengeToken: ch.challengeToken, code: { case: 'backupCode', value: u.backupCodes[0]! } });
    expect(done.session?.accessToken).toBeTruthy();
    // The same challenge again, and the same backup code with a new challenge: both refused.
    expect(codeOf(await a.connect.auth.completeMfa({ challengeToken: ch.challengeToken, code: { case: 'backupCode', value: u.backupCodes[1]! } }).catch((e) => e))).toBe(Code.Unauthenticated);
    const ch2 = await challenge(a.connect, u.email, u.password);
    expect(codeOf(await a.connect.auth.completeMfa({ challengeToken: ch2.challengeToken, code: { case: 'backupCode', value: u.backupCodes[0]! } }).catch((e) => e))).toBe(Code.Unauthenticated);
  });

  it('RegenerateBackupCodes voids the old set; DisableTotp needs the password and a code', async () => {
    const u = await enroll(a.grpc);
    const fresh = await a.grpc.auth.regenerateBackupCodes({ code: oathtool(u.secret, 1) }, bearer(u.session.accessToken));
    expect(fresh.backupCodes).toHaveLength(10);
    const ch = await challenge(a.grpc, u.email, u.password);
    expect(codeOf(await a.grpc.auth.completeMfa({ challengeToken: ch.challengeToken, code: { case: 'backupCode', value: u.backupCodes[0]! } }).catch((e) => e))).toBe(Code.Unauthenticated);

    const wrongPassword = await a.grpc.auth.disableTotp({ currentPassword: 'not-my-password-at-all', code: fresh.backupCodes[0]! }, bearer(u.session.accessToken)).catch((e) => e);
    expect(codeOf(wrongPassword)).toBe(Code.PermissionDenied);
    await a.grpc.auth.disableTotp({ currentPassword: u.password, code: fresh.backupCodes[1]! }, bearer(u.session.accessToken));
    const plain = await a.grpc.auth.login({ email: u.email, password: u.password });
    expect(plain.result.case).toBe('session');
  });

  it('CompleteMfa without a code is INVALID_ARGUMENT', async () => {
    const err = await a.grpc.auth.completeMfa({ challengeToken: 'x'.repeat(43) }).catch((e) => e);
    expect(codeOf(err)).toBe(Code.InvalidArgument);
    expect(ConnectError.from(err).rawMessage).toContain('code');
  });
});
