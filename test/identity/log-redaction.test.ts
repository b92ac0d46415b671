import { Code, ConnectError } from '@connectrpc/connect';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';

/**
 * docs/security.md X3: a real database failure in the middle of a write must not put the statement's
 * parameters (email, new hash), the password or the caller's tokens into any log line.
 */
describe('database failures are logged without secrets (X3)', () => {
  let t: TestIdentity;
  const marker = `frozen${randomBytes(4).toString('hex')}`;
  const email = `${marker}-victim@example.test`;
  const password = `old-${randomBytes(9).toString('base64url')}-Kq7`;
  const newPassword = `new-${randomBytes(9).toString('base64url')}-Zx3`;
  const registerPassword = `reg-${randomBytes(9).toString('base64url')}-Wm5`;
  let session: { accessToken: string; refreshToken: string };

  const sql = (statement: string) => t.app.internals.db.orm.em.fork().getConnection().execute(statement);

  beforeAll(async () => {
    t = await startTestIdentity({ env: { SIGNUP_MAX_PER_IP: '1000' } });
    ({ session } = await signUp(t.grpc, email, password));
    // Only in this test's own database: from now on no row with the marker may be written. NOT
    // VALID leaves the existing row alone, so the failure comes from the UPDATE/INSERT itself.
    await sql(`alter table users add constraint ${marker}_frozen check (email::text not like '${marker}%') not valid`);
  });
  afterAll(() => t?.stop());

  const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => Code[ConnectError.from(e).code]);

  it('ChangePassword and Register fail cleanly, and no log line carries a secret', async () => {
    expect(await codeOf(t.connect.auth.changePassword({ currentPassword: password, newPassword }, bearer(session.accessToken)))).toBe('Internal');
    expect(await codeOf(t.grpc.auth.register({ email: `${marker}-new@example.test`, password: registerPassword }))).toBe('Internal');

    const text = t.logs();
    const lines = text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    // The failures were logged, by what identifies them: one error line per call.
    const failures = lines.filter((l) => l.level === 50);
    expect(failures.map((l) => [l.rpc, l.code])).toEqual([
      ['identity.v1.AuthService/ChangePassword', 'internal'],
      ['identity.v1.AuthService/Register', 'internal'],
    ]);
    for (const f of failures) {
      expect(JSON.stringify(f)).toContain('"sqlState":"23514"');
      expect(JSON.stringify(f)).toContain(`"constraint":"${marker}_frozen"`);
    }
    // ...and by nothing that was in the statement or the request.
    for (const secret of [password, newPassword, registerPassword, session.accessToken, session.refreshToken, '$argon2', 'argon2id$']) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(new RegExp(`${marker}-(victim|new)`));
    expect(text).not.toMatch(/insert into|update "users"|Failing row/i);
  });
});
