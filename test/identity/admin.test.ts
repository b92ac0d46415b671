import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyTestDatabase, type EmptyTestDatabase } from '../helpers/database.js';
import { bearer, signUp, startTestIdentity, uniqueEmail, type TestIdentity } from '../helpers/identity.js';

const codeOf = (e: unknown) => ConnectError.from(e).code;
const ADMIN_PASSWORD = 'bootstrap-admin-secret-7719-xq';

async function login(t: TestIdentity, email: string, password: string) {
  const r = await t.grpc.auth.login({ email, password });
  if (r.result.case !== 'session') throw new Error('expected a session');
  return r.result.value;
}

describe('admin bootstrap (B1)', () => {
  let db: EmptyTestDatabase;
  const email = uniqueEmail('admin');
  const running: TestIdentity[] = [];
  beforeAll(async () => {
    db = await createEmptyTestDatabase();
  });
  afterAll(async () => {
    for (const t of running) await t.stop();
    await db.drop();
  });

  it('three replicas starting at once create exactly one admin; the password is never logged', async () => {
    const env = { ADMIN_EMAIL: email, ADMIN_PASSWORD };
    const started = await Promise.all([0, 1, 2].map(() => startTestIdentity({ databaseUrl: db.url, env })));
    running.push(...started);
    const rows: { email: string; password_must_change: boolean }[] = await started[0]!.app.internals.db.orm.em
      .fork()
      .execute(`select email, password_must_change from users where role = 'admin'`);
    expect(rows).toEqual([{ email, password_must_change: true }]);
    for (const t of started) expect(t.logs()).not.toContain(ADMIN_PASSWORD);
  });

  it('the admin must change the password before anything else', async () => {
    const t = running[0]!;
    const s = await login(t, email, ADMIN_PASSWORD);
    expect(s.user?.passwordMustChange).toBe(true);
    const info = await t.grpc.introspection.introspect({ token: s.accessToken }, bearer(t.introspectionSecret));
    expect(info.passwordMustChange).toBe(true);
    const blocked = await t.grpc.admin.listUsers({}, bearer(s.accessToken)).catch((e) => e);
    expect(codeOf(blocked)).toBe(Code.FailedPrecondition);
    expect(codeOf(await t.grpc.auth.listSessions({}, bearer(s.accessToken)).catch((e) => e))).toBe(Code.FailedPrecondition);
    expect((await t.grpc.auth.getCurrentUser({}, bearer(s.accessToken))).user?.role).toBe('admin');
    const changed = await t.grpc.auth.changePassword({ currentPassword: ADMIN_PASSWORD, newPassword: 'fresh-admin-password-5521-zz' }, bearer(s.accessToken));
    expect(changed.session?.user?.passwordMustChange).toBe(false);
    const list = await t.grpc.admin.listUsers({}, bearer(changed.session!.accessToken));
    expect(list.users.some((u) => u.email === email)).toBe(true);
  });

  it('a changed ADMIN_PASSWORD never overwrites the stored one', async () => {
    const t = await startTestIdentity({ databaseUrl: db.url, env: { ADMIN_EMAIL: email, ADMIN_PASSWORD: 'another-env-password-3310-qq' } });
    running.push(t);
    expect(codeOf(await t.grpc.auth.login({ email, password: 'another-env-password-3310-qq' }).catch((e) => e))).toBe(Code.Unauthenticated);
    await login(t, email, 'fresh-admin-password-5521-zz');
  });

  it('a password that fails the policy stops start-up with a clear message', async () => {
    const fresh = await createEmptyTestDatabase();
    try {
      const failure = await startTestIdentity({ databaseUrl: fresh.url, env: { ADMIN_EMAIL: uniqueEmail('admin'), ADMIN_PASSWORD: 'short-pw' } }).then(
        () => new Error('started'),
        (e: Error) => e,
      );
      expect(failure.message).toMatch(/ADMIN_PASSWORD/);
      expect(failure.message).toMatch(/at least 15/);
      expect(failure.message).not.toContain('short-pw');
    } finally {
      await fresh.drop();
    }
  });
});

describe('AdminService', () => {
  let t: TestIdentity;
  let adminToken: string;
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false });
    const a = await signUp(t.grpc);
    await t.app.internals.db.orm.em.fork().execute(`update users set role = 'admin' where id = ?`, [a.session.user!.id]);
    adminToken = (await login(t, a.email, a.password)).accessToken;
  });
  afterAll(() => t?.stop());

  const introspect = (token: string) => t.grpc.introspection.introspect({ token }, bearer(t.introspectionSecret));

  it('is PERMISSION_DENIED for a plain user and UNAUTHENTICATED without a token', async () => {
    const u = await signUp(t.grpc);
    expect(codeOf(await t.grpc.admin.listUsers({}, bearer(u.session.accessToken)).catch((e) => e))).toBe(Code.PermissionDenied);
    expect(codeOf(await t.connect.admin.listUsers({}).catch((e) => e))).toBe(Code.Unauthenticated);
  });

  it('lists users by page and prefix', async () => {
    const prefix = `page-${Date.now()}`;
    for (let i = 0; i < 5; i++) await t.grpc.auth.register({ email: `${prefix}-${i}@example.test`, password: 'violet-harbour-quietly-1923' });
    const first = await t.grpc.admin.listUsers({ pageSize: 2, emailPrefix: prefix }, bearer(adminToken));
    expect(first.users.map((u) => u.email)).toEqual([`${prefix}-0@example.test`, `${prefix}-1@example.test`]);
    const second = await t.grpc.admin.listUsers({ pageSize: 2, emailPrefix: prefix, pageToken: first.nextPageToken }, bearer(adminToken));
    expect(second.users.map((u) => u.email)).toEqual([`${prefix}-2@example.test`, `${prefix}-3@example.test`]);
    const last = await t.grpc.admin.listUsers({ pageSize: 2, emailPrefix: prefix, pageToken: second.nextPageToken }, bearer(adminToken));
    expect(last.users).toHaveLength(1);
    expect(last.nextPageToken).toBe('');
    // LIKE wildcards in the prefix are literal.
    expect((await t.grpc.admin.listUsers({ emailPrefix: '%' }, bearer(adminToken))).users).toEqual([]);
  });

  it('R7: disabling ends every session; the account cannot sign in; enabling lets it back', async () => {
    const u = await signUp(t.grpc);
    await new Promise((r) => setTimeout(r, 2));
    const res = await t.grpc.admin.setUserDisabled({ userId: u.session.user!.id, disabled: true }, bearer(adminToken));
    expect(res.user?.disabled).toBe(true);
    expect((await introspect(u.session.accessToken)).active).toBe(false);
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: u.session.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    expect(codeOf(await t.grpc.auth.login({ email: u.email, password: u.password }).catch((e) => e))).toBe(Code.Unauthenticated);
    await t.grpc.admin.setUserDisabled({ userId: u.session.user!.id, disabled: false }, bearer(adminToken));
    await login(t, u.email, u.password);
  });

  it('R7: RevokeUserSessions ends every family; RequirePasswordChange gates the next sign-in', async () => {
    const u = await signUp(t.grpc);
    await new Promise((r) => setTimeout(r, 2));
    await t.grpc.admin.revokeUserSessions({ userId: u.session.user!.id }, bearer(adminToken));
    expect((await introspect(u.session.accessToken)).active).toBe(false);
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: u.session.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);

    await t.grpc.admin.requirePasswordChange({ userId: u.session.user!.id }, bearer(adminToken));
    const s = await login(t, u.email, u.password);
    expect(s.user?.passwordMustChange).toBe(true);
    expect(codeOf(await t.grpc.auth.listSessions({}, bearer(s.accessToken)).catch((e) => e))).toBe(Code.FailedPrecondition);
  });

  it('SetUserRole and GetUser; an unknown user is NOT_FOUND', async () => {
    const u = await signUp(t.grpc);
    const r = await t.grpc.admin.setUserRole({ userId: u.session.user!.id, role: 'admin' }, bearer(adminToken));
    expect(r.user?.role).toBe('admin');
    expect((await t.grpc.admin.getUser({ userId: u.session.user!.id }, bearer(adminToken))).user?.role).toBe('admin');
    expect(codeOf(await t.grpc.admin.getUser({ userId: '00000000-0000-4000-8000-000000000000' }, bearer(adminToken)).catch((e) => e))).toBe(Code.NotFound);
  });

  it('SIGNUP_ENABLED=false refuses Register with PERMISSION_DENIED', async () => {
    const closed = await startTestIdentity({ redis: false, databaseUrl: t.databaseUrl, env: { SIGNUP_ENABLED: 'false' } });
    try {
      expect(codeOf(await closed.grpc.auth.register({ email: uniqueEmail(), password: 'violet-harbour-quietly-1923' }).catch((e) => e))).toBe(Code.PermissionDenied);
    } finally {
      await closed.stop();
    }
  });
});
