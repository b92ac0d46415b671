import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, signUp, startTestIdentity, type Clients, type TestIdentity } from '../helpers/identity.js';
import { Code, codeOf, enrollOverRpc, errorIdOf, mfaChallenge, SecurityAlertKind, securityAlerts } from './second-factor-support.js';

/** M7 over both transports: changing the second factor needs the password; an admin can reset it. */
describe('second factor changes (M7)', () => {
  let t: TestIdentity;
  let adminToken: string;
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, nats: false });
    const admin = await signUp(t.grpc);
    await t.app.internals.db.orm.em.fork().execute(`update users set role = 'admin' where id = ?`, [admin.session.user!.id]);
    const again = await t.grpc.auth.login({ email: admin.email, password: admin.password });
    if (again.result.case !== 'session') throw new Error('expected a session');
    adminToken = again.result.value.accessToken;
  });
  afterAll(() => t?.stop());

  const totpRows = async (userId: string) =>
    (await t.app.internals.db.orm.em.fork().execute(`select count(*)::int as n from totp_credentials where user_id = ?`, [userId]))[0] as { n: number };

  for (const [name, pick] of [
    ['gRPC', () => t.grpc],
    ['Connect', () => t.connect],
  ] as Array<[string, () => Clients]>) {
    it(`${name}: a stolen access token alone cannot enroll a second factor`, async () => {
      const c = pick();
      const u = await signUp(c);
      const token = bearer(u.session.accessToken);
      const missing = await c.auth.beginTotpEnrollment({}, token).catch((e: unknown) => e);
      expect(codeOf(missing)).toBe(Code.InvalidArgument);
      expect(errorIdOf(missing)).toBe('ERR_INVALID_ARGUMENT');
      const wrong = await c.auth.beginTotpEnrollment({ currentPassword: 'not-the-password-at-all-42' }, token).catch((e: unknown) => e);
      // The same answer as DisableTotp with a wrong password.
      const disableWrong = await c.auth.disableTotp({ currentPassword: 'not-the-password-at-all-42', code: '123456' }, token).catch((e: unknown) => e);
      expect([codeOf(wrong), errorIdOf(wrong)]).toEqual([Code.PermissionDenied, 'ERR_WRONG_PASSWORD']);
      expect([codeOf(disableWrong), errorIdOf(disableWrong)]).toEqual([codeOf(wrong), errorIdOf(wrong)]);
      // Nothing was started, so there is nothing a code could confirm.
      expect((await totpRows(u.session.user!.id)).n).toBe(0);
      const confirm = await c.auth.confirmTotpEnrollment({ code: '123456' }, token).catch((e: unknown) => e);
      expect([codeOf(confirm), errorIdOf(confirm)]).toEqual([Code.FailedPrecondition, 'ERR_TOTP_ENROLLMENT_NOT_STARTED']);
      expect((await c.auth.getCurrentUser({}, token)).user?.totpEnabled).toBe(false);
      expect((await c.auth.login({ email: u.email, password: u.password })).result.case).toBe('session');
      // With the password it works.
      const begin = await c.auth.beginTotpEnrollment({ currentPassword: u.password }, token);
      expect(begin.secret).toMatch(/^[A-Z2-7]{32}$/);
    });

    it(`${name}: every second-factor change raises an alert`, async () => {
      const c = pick();
      const u = await enrollOverRpc(c);
      const token = bearer(u.accessToken);
      const fresh = await c.auth.regenerateBackupCodes({ code: u.totp(1) }, token);
      await c.auth.disableTotp({ currentPassword: u.password, code: fresh.backupCodes[0]! }, token);
      expect(await securityAlerts(t, u.userId)).toEqual([
        SecurityAlertKind.TOTP_ENABLED,
        SecurityAlertKind.BACKUP_CODES_REGENERATED,
        SecurityAlertKind.BACKUP_CODE_USED,
        SecurityAlertKind.TOTP_DISABLED,
      ]);
    });

    it(`${name}: ResetUserSecondFactor removes TOTP and backup codes, ends every session and alerts the user`, async () => {
      const c = pick();
      const u = await enrollOverRpc(c);
      // A second session, signed in with the second factor.
      const done = await c.auth.completeMfa({ challengeToken: await mfaChallenge(c, u.email, u.password), code: { case: 'totpCode', value: u.totp(1) } });
      const pending = await mfaChallenge(c, u.email, u.password);

      const res = await c.admin.resetUserSecondFactor({ userId: u.userId }, bearer(adminToken));
      expect(res.user).toMatchObject({ id: u.userId, email: u.email, totpEnabled: false });

      for (const s of [{ accessToken: u.accessToken, refreshToken: u.refreshToken }, done.session!]) {
        expect((await t.grpc.introspection.introspect({ token: s.accessToken }, bearer(t.introspectionSecret))).active).toBe(false);
        expect(codeOf(await c.auth.refresh({ refreshToken: s.refreshToken }).catch((e: unknown) => e))).toBe(Code.Unauthenticated);
      }
      // Neither the old challenge nor a backup code is of any use now.
      expect(codeOf(await c.auth.completeMfa({ challengeToken: pending, code: { case: 'backupCode', value: u.backupCodes[0]! } }).catch((e: unknown) => e))).toBe(
        Code.Unauthenticated,
      );
      const rows = await t.app.internals.db.orm.em
        .fork()
        .execute(`select (select count(*) from totp_credentials where user_id = ?)::int as totp, (select count(*) from backup_codes where user_id = ?)::int as codes`, [
          u.userId,
          u.userId,
        ]);
      expect(rows[0]).toEqual({ totp: 0, codes: 0 });

      // The password alone signs in now, and the user may enroll again.
      const plain = await c.auth.login({ email: u.email, password: u.password });
      if (plain.result.case !== 'session') throw new Error(`expected a session, got ${plain.result.case}`);
      expect(plain.result.value.user?.totpEnabled).toBe(false);
      await c.auth.beginTotpEnrollment({ currentPassword: u.password }, bearer(plain.result.value.accessToken));

      expect((await securityAlerts(t, u.userId)).filter((k) => k === SecurityAlertKind.SECOND_FACTOR_RESET)).toHaveLength(1);
    });

    it(`${name}: ResetUserSecondFactor is NOT_FOUND for an unknown user and PERMISSION_DENIED for a plain user`, async () => {
      const c = pick();
      const unknown = await c.admin.resetUserSecondFactor({ userId: '00000000-0000-4000-8000-000000000000' }, bearer(adminToken)).catch((e: unknown) => e);
      expect([codeOf(unknown), errorIdOf(unknown)]).toEqual([Code.NotFound, 'ERR_USER_NOT_FOUND']);
      const u = await enrollOverRpc(c);
      const denied = await c.admin.resetUserSecondFactor({ userId: u.userId }, bearer(u.accessToken)).catch((e: unknown) => e);
      expect(codeOf(denied)).toBe(Code.PermissionDenied);
      expect((await c.auth.getCurrentUser({}, bearer(u.accessToken))).user?.totpEnabled).toBe(true);
    });
  }
});
