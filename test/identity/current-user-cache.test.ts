import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { base32Decode } from '../../src/identity/mfa/base32.js';
import { generateTotp } from '../../src/identity/mfa/totp.js';
import { bearer, signUp, startTestIdentity, type Clients, type TestIdentity } from '../helpers/identity.js';
import { describeWithNats } from '../helpers/services.js';
import { codeOf } from './second-factor-support.js';

/**
 * GetCurrentUser answers from the user state its authentication read through the cache Introspect
 * uses. The cache entries live a minute here, so an answer that missed an invalidation would show.
 */
describeWithNats('GetCurrentUser from the cached user state', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ env: { INTROSPECTION_CACHE_TTL_MS: '60000' } });
  }, 60_000);
  afterAll(() => t?.stop());

  async function current(c: Clients, token: string) {
    return (await c.auth.getCurrentUser({}, bearer(token))).user!;
  }

  async function introspect(token: string) {
    return t.grpc.introspection.introspect({ token }, bearer(t.introspectionSecret));
  }

  it('shows TOTP turned on and off through another RPC at once, over every transport', async () => {
    const u = await signUp(t.grpc);
    const token = u.session.accessToken;
    for (const c of [t.grpc, t.connect, t.web]) expect((await current(c, token)).totpEnabled).toBe(false);

    const begin = await t.connect.auth.beginTotpEnrollment({ currentPassword: u.password }, bearer(token));
    const key = base32Decode(begin.secret);
    await t.connect.auth.confirmTotpEnrollment({ code: generateTotp(key, Date.now()) }, bearer(token));
    for (const c of [t.grpc, t.connect, t.web]) expect((await current(c, token)).totpEnabled).toBe(true);

    await t.grpc.auth.disableTotp({ currentPassword: u.password, code: generateTotp(key, Date.now() + 30_000) }, bearer(token));
    for (const c of [t.grpc, t.connect, t.web]) expect((await current(c, token)).totpEnabled).toBe(false);
  });

  it('is never staler than Introspect: a role change ends the old token for both, a new token shows the new role in both', async () => {
    const admin = await signUp(t.grpc);
    await t.app.internals.db.orm.em.fork().execute(`update users set role = 'admin' where id = ?`, [admin.session.user!.id]);
    const adminToken = (await t.grpc.auth.refresh({ refreshToken: admin.session.refreshToken })).session!.accessToken;

    const u = await signUp(t.grpc);
    const before = await current(t.grpc, u.session.accessToken);
    const seen = await introspect(u.session.accessToken);
    expect(before).toMatchObject({ id: u.session.user!.id, email: seen.email, role: 'user', disabled: false, passwordMustChange: false });
    expect(before.createdAt).toEqual(u.session.user!.createdAt);

    await t.grpc.admin.setUserRole({ userId: u.session.user!.id, role: 'admin' }, bearer(adminToken));
    expect((await introspect(u.session.accessToken)).active).toBe(false);
    expect(codeOf(await current(t.connect, u.session.accessToken).catch((e) => e))).toBe(Code.Unauthenticated);

    const again = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (again.result.case !== 'session') throw new Error('expected a session');
    const fresh = again.result.value.accessToken;
    expect((await introspect(fresh)).role).toBe('admin');
    expect((await current(t.connect, fresh)).role).toBe('admin');
  });

  it('a password that must change shows in GetCurrentUser as in Introspect', async () => {
    const admin = await signUp(t.grpc);
    await t.app.internals.db.orm.em.fork().execute(`update users set role = 'admin' where id = ?`, [admin.session.user!.id]);
    const adminToken = (await t.grpc.auth.refresh({ refreshToken: admin.session.refreshToken })).session!.accessToken;
    const u = await signUp(t.grpc);
    await current(t.grpc, u.session.accessToken);
    await t.grpc.admin.requirePasswordChange({ userId: u.session.user!.id }, bearer(adminToken));
    const again = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (again.result.case !== 'session') throw new Error('expected a session');
    const token = again.result.value.accessToken;
    expect((await introspect(token)).passwordMustChange).toBe(true);
    expect((await current(t.grpc, token)).passwordMustChange).toBe(true);
  });
});
