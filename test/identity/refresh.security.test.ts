import { createHash } from 'node:crypto';
import { fromBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecurityAlertKind, SecurityAlertSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { ManualClock } from '../../src/shared/clock.js';
import { SecretBox } from '../../src/shared/secret-box.js';
import { bearer, signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';

const codeOf = (e: unknown) => ConnectError.from(e).code;

async function sql<T = Record<string, unknown>>(t: TestIdentity, query: string, params: unknown[] = []): Promise<T[]> {
  return t.app.internals.db.orm.em.fork().execute(query, params);
}

/** docs/security.md R1-R7 against a real PostgreSQL. */
describe('refresh tokens', () => {
  const clock = new ManualClock(Date.now());
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({
      clock,
      env: { REFRESH_GRACE_SECONDS: '5', REFRESH_TOKEN_IDLE_TTL_SECONDS: '3600', REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS: '7200' },
    });
  });
  afterAll(() => t?.stop());

  const introspect = (token: string) => t.grpc.introspection.introspect({ token }, bearer(t.introspectionSecret));

  it('R1: 256-bit random tokens; only the SHA-256 is stored', async () => {
    const { session } = await signUp(t.grpc);
    expect(Buffer.from(session.refreshToken, 'base64url')).toHaveLength(32);
    const digest = createHash('sha256').update(session.refreshToken).digest();
    const rows = await sql<{ token_hash: Buffer }>(t, 'select token_hash from refresh_tokens where token_hash = ?', [digest]);
    expect(rows).toHaveLength(1);
    const dump = JSON.stringify(await sql(t, 'select * from refresh_tokens'));
    expect(dump).not.toContain(session.refreshToken);
  });

  it('R2: every use rotates and the consumed token stays, marked, in its family', async () => {
    const { session } = await signUp(t.grpc);
    const next = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    expect(next.session!.refreshToken).not.toBe(session.refreshToken);
    const rows = await sql<{ consumed_at: unknown; parent_id: string | null }>(
      t,
      `select consumed_at, parent_id from refresh_tokens where session_id = (select session_id from refresh_tokens where token_hash = ?) order by created_at`,
      [createHash('sha256').update(session.refreshToken).digest()],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]!.consumed_at).not.toBeNull();
    expect(rows[1]!.consumed_at).toBeNull();
    expect(rows[1]!.parent_id).not.toBeNull();
  });

  // R3 (atomic consumption) is forced, not hoped for, in refresh.race.test.ts.

  it('R4: inside the grace window the same predecessor gets the same successor', async () => {
    const { session } = await signUp(t.grpc);
    const a = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    clock.advance(4_000);
    const b = await t.connect.auth.refresh({ refreshToken: session.refreshToken });
    expect(b.session!.refreshToken).toBe(a.session!.refreshToken);
  });

  it('R4 across an upgrade: a successor kept by the previous release (bound to the row id) still opens in the grace window', async () => {
    const { session } = await signUp(t.grpc);
    const a = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    const hash = createHash('sha256').update(session.refreshToken).digest();
    const [row] = await sql<{ id: string }>(t, 'select id from refresh_tokens where token_hash = ?', [hash]);
    // What the previous release stored: the same successor, sealed with "refresh-successor:<row id>".
    const box = new SecretBox(t.config.SECRET_ENCRYPTION_KEY!);
    await sql(t, 'update refresh_tokens set successor_token_enc = ? where id = ?', [box.seal(Buffer.from(a.session!.refreshToken, 'utf8'), `refresh-successor:${row!.id}`), row!.id]);
    clock.advance(1_000);
    const b = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    expect(b.session!.refreshToken).toBe(a.session!.refreshToken);
    // A blob bound to anything else still does not open: the replay gets no token (stored data that fails its check is INTERNAL).
    await sql(t, 'update refresh_tokens set successor_token_enc = ? where id = ?', [box.seal(Buffer.from(a.session!.refreshToken, 'utf8'), 'refresh-successor:another-row'), row!.id]);
    const moved = await t.grpc.auth.refresh({ refreshToken: session.refreshToken }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(moved).toBeInstanceOf(ConnectError);
    expect(codeOf(moved)).toBe(Code.Internal);
  });

  it('R4, R8: reuse after the grace window revokes the family, raises an alert and voids its access tokens only', async () => {
    const { session, email, password } = await signUp(t.grpc);
    const other = (await t.grpc.auth.login({ email, password })).result.value as { accessToken: string; refreshToken: string };
    const next = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    expect((await introspect(next.session!.accessToken)).active).toBe(true);
    clock.advance(6_000);
    const err = await t.grpc.auth.refresh({ refreshToken: session.refreshToken }).catch((e) => e);
    expect(codeOf(err)).toBe(Code.Unauthenticated);
    // The whole family is gone: the legitimate successor no longer works either.
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: next.session!.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    // Access tokens of the family introspect inactive, with nothing else.
    const info = await introspect(next.session!.accessToken);
    expect(info.active).toBe(false);
    expect(info.sub).toBe('');
    expect((await introspect(session.accessToken)).active).toBe(false);
    // R8: the user's other session was not exposed by the reused token; it stays active (the
    // family is ended by its `sid`, tokens_valid_after does not move).
    expect((await introspect(other.accessToken)).active).toBe(true);
    expect((await t.grpc.auth.refresh({ refreshToken: other.refreshToken })).session!.refreshToken).toBeTruthy();
    const [user] = await sql<{ tva: Date | string }>(t, `select tokens_valid_after as tva from users where id = ?`, [session.user!.id]);
    expect(new Date(user!.tva).getTime()).toBe(0);
    // The alert is in the outbox, in the same commit as the revocation.
    const alerts = await sql<{ payload: Buffer }>(t, `select payload from outbox where subject = 'security_alert'`);
    const decoded = alerts.map((a) => fromBinary(SecurityAlertSchema, a.payload));
    const mine = decoded.filter((a) => a.email === session.user!.email);
    expect(mine.map((a) => a.kind)).toEqual([SecurityAlertKind.REFRESH_TOKEN_REUSE]);
    expect(mine[0]!.userId).toBe(session.user!.id);
    const revoked = await sql(t, `select 1 from outbox where subject = 'sessions_revoked'`);
    expect(revoked.length).toBeGreaterThan(0);
  });

  it('R4: an older ancestor is reuse too, even inside the grace window of a later rotation', async () => {
    const { session } = await signUp(t.grpc);
    const second = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    clock.advance(6_000);
    const third = await t.grpc.auth.refresh({ refreshToken: second.session!.refreshToken });
    expect(third.session!.refreshToken).toBeTruthy();
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: session.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: third.session!.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
  });

  it('R5: a rolled-back rotation never counts as a use', async () => {
    const { session } = await signUp(t.grpc);
    await sql(t, `create table if not exists test_fail_inserts (active boolean not null)`);
    await sql(t, `create or replace function test_fail_insert() returns trigger language plpgsql as $$
      begin if exists (select 1 from test_fail_inserts where active) then raise exception 'injected failure'; end if; return new; end $$`);
    await sql(t, `drop trigger if exists test_fail_insert on refresh_tokens`);
    await sql(t, `create trigger test_fail_insert before insert on refresh_tokens for each row execute function test_fail_insert()`);
    await sql(t, `insert into test_fail_inserts values (true)`);
    try {
      const err = await t.grpc.auth.refresh({ refreshToken: session.refreshToken }).catch((e) => e);
      expect(codeOf(err)).toBe(Code.Internal);
      expect(ConnectError.from(err).rawMessage).not.toContain('injected');
    } finally {
      await sql(t, `delete from test_fail_inserts`);
    }
    clock.advance(60_000); // well past the grace window: a counted use would now be "reuse"
    const ok = await t.grpc.auth.refresh({ refreshToken: session.refreshToken });
    expect(ok.session!.refreshToken).toBeTruthy();
  });

  it('R6: idle expiry and absolute family lifetime', async () => {
    const idle = await signUp(t.grpc);
    clock.advance(3_600_000 + 1_000);
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: idle.session.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);

    const { session } = await signUp(t.grpc);
    let token = session.refreshToken;
    // Keep the family busy: each refresh lands before the idle limit, but the family still ends.
    for (let i = 0; i < 2; i++) {
      clock.advance(3_000_000);
      token = (await t.grpc.auth.refresh({ refreshToken: token })).session!.refreshToken;
    }
    clock.advance(3_000_000); // 9,000 s after login > 7,200 s absolute, though only 3,000 s idle
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: token }).catch((e) => e))).toBe(Code.Unauthenticated);
  });

  it('T4: a token verified before (and so cached) still expires with the clock', async () => {
    const { session } = await signUp(t.grpc);
    expect((await introspect(session.accessToken)).active).toBe(true);
    clock.advance(900_000 + 29_000);
    expect((await introspect(session.accessToken)).active).toBe(true); // within the 30 s leeway
    clock.advance(2_000);
    expect((await introspect(session.accessToken)).active).toBe(false);
  });

  it('Logout ends the family of the presented token and its access tokens (R8)', async () => {
    const { session } = await signUp(t.grpc);
    await t.grpc.auth.logout({ refreshToken: session.refreshToken });
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: session.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    expect((await introspect(session.accessToken)).active).toBe(false);
  });

  it('R7: LogoutAll ends every family and voids earlier access tokens', async () => {
    const first = await signUp(t.grpc);
    const second = await t.grpc.auth.login({ email: first.email, password: first.password });
    const s2 = second.result.value as { accessToken: string; refreshToken: string };
    // Revocation is by instant (ms): tokens issued at or after it stay valid. The clock here is frozen.
    clock.advance(1);
    await t.grpc.auth.logoutAll({}, bearer(first.session.accessToken));
    for (const rt of [first.session.refreshToken, s2.refreshToken]) {
      expect(codeOf(await t.grpc.auth.refresh({ refreshToken: rt }).catch((e) => e))).toBe(Code.Unauthenticated);
    }
    expect((await introspect(first.session.accessToken)).active).toBe(false);
    expect((await introspect(s2.accessToken)).active).toBe(false);
    // A sign-in right after logout-all works.
    const again = await t.grpc.auth.login({ email: first.email, password: first.password });
    expect((await introspect((again.result.value as { accessToken: string }).accessToken)).active).toBe(true);
  });

  it('R7: ChangePassword ends every other family and returns a working session', async () => {
    const u = await signUp(t.grpc);
    const newPassword = 'amber-lantern-drifts-8812';
    clock.advance(1);
    const res = await t.grpc.auth.changePassword({ currentPassword: u.password, newPassword }, bearer(u.session.accessToken));
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: u.session.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    expect((await introspect(u.session.accessToken)).active).toBe(false);
    expect((await introspect(res.session!.accessToken)).active).toBe(true);
    await t.grpc.auth.refresh({ refreshToken: res.session!.refreshToken });
    // P5: the old password is gone; the alert is raised.
    expect(codeOf(await t.grpc.auth.login({ email: u.email, password: u.password }).catch((e) => e))).toBe(Code.Unauthenticated);
    const alerts = (await sql<{ payload: Buffer }>(t, `select payload from outbox where subject = 'security_alert'`)).map((a) => fromBinary(SecurityAlertSchema, a.payload));
    expect(alerts.some((a) => a.userId === u.session.user!.id && a.kind === SecurityAlertKind.PASSWORD_CHANGED)).toBe(true);
  });

  it('P5: ChangePassword needs the right current password', async () => {
    const u = await signUp(t.grpc);
    const err = await t.grpc.auth.changePassword({ currentPassword: 'not-the-password-at-all', newPassword: 'amber-lantern-drifts-8812' }, bearer(u.session.accessToken)).catch((e) => e);
    expect(codeOf(err)).toBe(Code.PermissionDenied);
  });

  it('ListSessions shows each family and RevokeSession ends one, with its access tokens (R8)', async () => {
    const u = await signUp(t.grpc);
    const other = (await t.grpc.auth.login({ email: u.email, password: u.password })).result.value as { accessToken: string; refreshToken: string };
    const list = await t.grpc.auth.listSessions({}, bearer(u.session.accessToken));
    expect(list.sessions).toHaveLength(2);
    const otherSid = (JSON.parse(Buffer.from(other.accessToken.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid;
    const target = list.sessions.find((s) => s.sessionId === otherSid)!;
    await t.grpc.auth.revokeSession({ sessionId: target.sessionId }, bearer(u.session.accessToken));
    expect((await introspect(other.accessToken)).active).toBe(false);
    expect(codeOf(await t.grpc.auth.refresh({ refreshToken: other.refreshToken }).catch((e) => e))).toBe(Code.Unauthenticated);
    const after = await t.grpc.auth.listSessions({}, bearer(u.session.accessToken));
    expect(after.sessions).toHaveLength(1);
    const stranger = await signUp(t.grpc);
    const err = await t.grpc.auth.revokeSession({ sessionId: after.sessions[0]!.sessionId }, bearer(stranger.session.accessToken)).catch((e) => e);
    expect(codeOf(err)).toBe(Code.NotFound);
  });
});
