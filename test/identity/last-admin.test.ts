import { ConnectError } from '@connectrpc/connect';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bearer, signUp, startTestIdentity, type Clients, type TestIdentity } from '../helpers/identity.js';
import { lockProbe, type LockProbe } from '../helpers/lock-waiters.js';
import { Code, codeOf, errorIdOf } from './second-factor-support.js';

/** B2: the last active admin cannot be demoted or disabled, also when two admins race. */
describe('last active admin (B2)', () => {
  let t: TestIdentity;
  let probe: LockProbe | undefined;
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, nats: false });
  });
  afterEach(async () => {
    await probe?.close();
    probe = undefined;
  });
  afterAll(() => t?.stop());

  const sql = (q: string, params: unknown[] = []) => t.app.internals.db.orm.em.fork().execute(q, params);
  const activeAdmins = async () => ((await sql(`select count(*)::int as n from users where role = 'admin' and not disabled`))[0] as { n: number }).n;

  /** Makes exactly `n` fresh active admins (every earlier admin is demoted behind the service's back). */
  async function admins(n: number): Promise<Array<{ id: string; token: { headers: Record<string, string> } }>> {
    await sql(`update users set role = 'user' where role = 'admin'`);
    const out = [];
    for (let i = 0; i < n; i++) {
      const u = await signUp(t.grpc);
      await sql(`update users set role = 'admin' where id = ?`, [u.session.user!.id]);
      const s = await t.grpc.auth.login({ email: u.email, password: u.password });
      if (s.result.case !== 'session') throw new Error('expected a session');
      out.push({ id: u.session.user!.id, token: bearer(s.result.value.accessToken) });
    }
    expect(await activeAdmins()).toBe(n);
    return out;
  }

  const refusedAsLast = (e: unknown) => {
    expect([codeOf(e), errorIdOf(e)]).toEqual([Code.FailedPrecondition, 'ERR_LAST_ADMIN']);
    expect(ConnectError.from(e).rawMessage).toMatch(/last active admin/);
  };

  for (const [name, pick] of [
    ['gRPC', () => t.grpc],
    ['Connect', () => t.connect],
  ] as Array<[string, () => Clients]>) {
    it(`${name}: the only admin can neither demote nor disable itself`, async () => {
      const [me] = await admins(1);
      refusedAsLast(await pick().admin.setUserRole({ userId: me!.id, role: 'user' }, me!.token).catch((e: unknown) => e));
      refusedAsLast(await pick().admin.setUserDisabled({ userId: me!.id, disabled: true }, me!.token).catch((e: unknown) => e));
      expect(await activeAdmins()).toBe(1);
      // Refused before anything changed: the admin's own session was not ended either.
      expect((await pick().admin.getUser({ userId: me!.id }, me!.token)).user).toMatchObject({ role: 'admin', disabled: false });
    });
  }

  it('with two admins one may go; a disabled admin does not count', async () => {
    const [a, b] = await admins(2);
    expect((await t.grpc.admin.setUserDisabled({ userId: b!.id, disabled: true }, a!.token)).user?.disabled).toBe(true);
    // b is still role admin but disabled: a is the last active one.
    refusedAsLast(await t.grpc.admin.setUserRole({ userId: a!.id, role: 'user' }, a!.token).catch((e: unknown) => e));
    // Demoting the disabled admin is fine; it was not active.
    await t.grpc.admin.setUserRole({ userId: b!.id, role: 'user' }, a!.token);
    expect(await activeAdmins()).toBe(1);
  });

  /**
   * Both calls are made to wait inside PostgreSQL behind a lock the test holds on both admin rows,
   * then let go together: without the guard's row locks both would see two admins and both succeed.
   */
  for (const [label, calls] of [
    ['two admins demote each other', (a: Admin, b: Admin) => [t.grpc.admin.setUserRole({ userId: b.id, role: 'user' }, a.token), t.connect.admin.setUserRole({ userId: a.id, role: 'user' }, b.token)]],
    ['one disables the other while that one demotes the first', (a: Admin, b: Admin) => [t.connect.admin.setUserDisabled({ userId: b.id, disabled: true }, a.token), t.grpc.admin.setUserRole({ userId: a.id, role: 'user' }, b.token)]],
    ['two admins demote themselves', (a: Admin, b: Admin) => [t.grpc.admin.setUserRole({ userId: a.id, role: 'user' }, a.token), t.connect.admin.setUserDisabled({ userId: b.id, disabled: true }, b.token)]],
  ] as Array<[string, (a: Admin, b: Admin) => Promise<unknown>[]]>) {
    it(`concurrently, ${label}: exactly one succeeds, one admin remains`, async () => {
      const [a, b] = await admins(2);
      probe = lockProbe(t.databaseUrl);
      const held = await probe.hold(`select id from users where id in (?, ?) for update`, [a!.id, b!.id]);
      const results = Promise.allSettled(calls(a!, b!));
      await probe.waitForWaiters(2);
      await held.release();
      const settled = await results;
      expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = settled.find((r) => r.status === 'rejected');
      refusedAsLast((refused as PromiseRejectedResult).reason);
      expect(await activeAdmins()).toBe(1);
    });
  }
});

type Admin = { id: string; token: { headers: Record<string, string> } };
