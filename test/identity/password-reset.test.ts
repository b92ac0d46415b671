import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBinary } from '@bufbuild/protobuf';
import { PasswordResetRequestedSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { ManualClock } from '../../src/shared/clock.js';
import { waitFor } from '../events/support.js';
import { bearer, signUp, startTestIdentity, TEST_PASSWORD, uniqueEmail, type Clients, type TestIdentity } from '../helpers/identity.js';
import { codeOf, enrollOverRpc, errorIdOf, securityAlerts, SecurityAlertKind } from './second-factor-support.js';

/**
 * Password reset over gRPC and Connect against real PostgreSQL (docs/security.md F1-F4): the
 * link is read from its event in the outbox, as the mailer would receive it.
 */

const RESET_URL = 'https://app.example.test/reset-password';
const NEW_PASSWORD = 'amber-lighthouse-softly-4417';
const MAX_PER_EMAIL = 3;

let t: TestIdentity;
const clock = new ManualClock(Date.now());
let tick: NodeJS.Timeout;
/** Every test speaks from its own client address (TRUSTED_PROXIES), so the address limit is per test. */
let nextAddress = 1;
const fromAddress = () => {
  const ip = `203.0.113.${nextAddress++}`;
  return { headers: { 'x-forwarded-for': ip } };
};

interface Link {
  userId: string;
  email: string;
  resetUrl: string;
  token: string;
  expiresAtMs: number;
}

async function resetLinks(userId?: string): Promise<Link[]> {
  const rows: Array<{ payload: Buffer }> = await t.app.internals.db.orm.em
    .fork()
    .execute(`select payload from outbox where subject = 'password_reset_requested' order by seq`);
  return rows
    .map((r) => fromBinary(PasswordResetRequestedSchema, r.payload))
    .filter((e) => userId === undefined || e.userId === userId)
    .map((e) => ({
      userId: e.userId,
      email: e.email,
      resetUrl: e.resetUrl,
      token: new URL(e.resetUrl).searchParams.get('token') ?? '',
      expiresAtMs: Number(e.expiresAt!.seconds) * 1000,
    }));
}

/** Waits for the user's n-th link (requests do their account work after answering). */
async function nthLink(userId: string, n: number): Promise<Link> {
  await waitFor(async () => (await resetLinks(userId)).length >= n, 10_000, 25);
  return (await resetLinks(userId))[n - 1]!;
}

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

beforeAll(async () => {
  t = await startTestIdentity({
    clock,
    env: {
      PUBLIC_RESET_URL: RESET_URL,
      PASSWORD_RESET_MAX_PER_IP: '5',
      PASSWORD_RESET_MAX_PER_EMAIL: String(MAX_PER_EMAIL),
      LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP: '3',
      TRUSTED_PROXIES: '127.0.0.1',
      HIBP_ENABLED: 'false',
    },
  });
  // The manual clock follows real time unless a test moves it ahead.
  let offset = 0;
  tick = setInterval(() => clock.set(Date.now() + offset), 10);
  (clock as unknown as { jump(ms: number): void }).jump = (ms: number) => {
    offset += ms;
    clock.set(Date.now() + offset);
  };
});

afterAll(async () => {
  clearInterval(tick);
  await t?.stop();
});

const jump = (ms: number) => (clock as unknown as { jump(ms: number): void }).jump(ms);

describe.each([
  ['gRPC', () => t.grpc],
  ['Connect', () => t.connect],
] as const)('password reset over %s', (_, clients) => {
  let c: Clients;
  beforeAll(() => {
    c = clients();
  });

  it('a link from the outbox resets the password once; sessions and access tokens end; the old password stops working', async () => {
    const u = await signUp(c);
    const userId = u.session.user!.id;
    expect(await c.auth.requestPasswordReset({ email: u.email.toUpperCase() }, fromAddress())).toEqual(expect.objectContaining({}));
    const link = await nthLink(userId, 1);
    expect(link.resetUrl.startsWith(`${RESET_URL}?token=`)).toBe(true);
    expect(link.email).toBe(u.email);
    expect(link.expiresAtMs - clock.nowMs()).toBeLessThanOrEqual(1800_000);

    // Requesting changed nothing else: the old password and the session still work.
    expect((await c.auth.login({ email: u.email, password: u.password })).result.case).toBe('session');
    const before = await c.introspection.introspect({ token: u.session.accessToken }, bearer(t.introspectionSecret));
    expect(before.active).toBe(true);

    const done = await c.auth.resetPassword({ resetToken: link.token, newPassword: NEW_PASSWORD }, fromAddress());
    // Nobody is signed in by a reset (F4): the answer carries nothing.
    expect(Object.keys(done).filter((k) => !k.startsWith('$'))).toEqual([]);

    const after = await c.introspection.introspect({ token: u.session.accessToken }, bearer(t.introspectionSecret));
    expect(after.active).toBe(false);
    expect(codeOf(await failure(c.auth.refresh({ refreshToken: u.session.refreshToken })))).toBe(16);
    expect(errorIdOf(await failure(c.auth.login({ email: u.email, password: u.password })))).toBe('ERR_INVALID_CREDENTIALS');
    expect((await c.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
    expect(await securityAlerts(t, userId)).toContain(SecurityAlertKind.PASSWORD_RESET);

    const again = await failure(c.auth.resetPassword({ resetToken: link.token, newPassword: 'another-quiet-meadow-2291' }, fromAddress()));
    expect(codeOf(again)).toBe(3);
    expect(errorIdOf(again)).toBe('ERR_RESET_TOKEN_USED');
    expect((await c.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
  });

  it('only the newest link works', async () => {
    const u = await signUp(c);
    const userId = u.session.user!.id;
    await c.auth.requestPasswordReset({ email: u.email }, fromAddress());
    const older = await nthLink(userId, 1);
    await c.auth.requestPasswordReset({ email: u.email }, fromAddress());
    const newer = await nthLink(userId, 2);
    expect(newer.token).not.toBe(older.token);
    const refused = await failure(c.auth.resetPassword({ resetToken: older.token, newPassword: NEW_PASSWORD }, fromAddress()));
    expect(codeOf(refused)).toBe(3);
    expect(errorIdOf(refused)).toBe('ERR_RESET_TOKEN_SUPERSEDED');
    expect((await c.auth.login({ email: u.email, password: u.password })).result.case).toBe('session');
    await c.auth.resetPassword({ resetToken: newer.token, newPassword: NEW_PASSWORD }, fromAddress());
    expect((await c.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
  });

  it('a link past its lifetime is refused and changes nothing', async () => {
    const u = await signUp(c);
    await c.auth.requestPasswordReset({ email: u.email }, fromAddress());
    const link = await nthLink(u.session.user!.id, 1);
    jump(1800_000 + 1000);
    let refused: unknown;
    try {
      refused = await failure(c.auth.resetPassword({ resetToken: link.token, newPassword: NEW_PASSWORD }, fromAddress()));
    } finally {
      jump(-(1800_000 + 1000));
    }
    expect(codeOf(refused)).toBe(3);
    expect(errorIdOf(refused)).toBe('ERR_RESET_TOKEN_EXPIRED');
    expect((await c.auth.login({ email: u.email, password: u.password })).result.case).toBe('session');
  });

  it('unknown, disabled and throttled emails get the same answer as an existing one, and no link', async () => {
    const existing = await signUp(c);
    const disabled = await signUp(c);
    const throttled = await signUp(c);
    await t.app.internals.db.orm.em.fork().execute(`update users set disabled = true where email = ?`, [disabled.email]);
    const throttledId = throttled.session.user!.id;
    for (let i = 1; i <= MAX_PER_EMAIL; i++) {
      await c.auth.requestPasswordReset({ email: throttled.email }, fromAddress());
      await nthLink(throttledId, i);
    }
    const unknown = uniqueEmail('nobody');
    const answers = [];
    for (const email of [existing.email, unknown, disabled.email, throttled.email]) {
      answers.push(await c.auth.requestPasswordReset({ email }, fromAddress()));
    }
    for (const a of answers) expect(a).toEqual(answers[0]);
    // A later request for another account is done once the ones above are.
    const sentinel = await signUp(c);
    await c.auth.requestPasswordReset({ email: sentinel.email }, fromAddress());
    await nthLink(sentinel.session.user!.id, 1);
    await nthLink(existing.session.user!.id, 1);
    expect(await resetLinks(disabled.session.user!.id)).toEqual([]);
    expect((await resetLinks()).filter((l) => l.email === unknown)).toEqual([]);
    expect(await resetLinks(throttledId)).toHaveLength(MAX_PER_EMAIL);
  });
});

describe('password reset and the rest of the account', () => {
  it('keeps the second factor required at the next sign-in', async () => {
    const u = await enrollOverRpc(t.grpc);
    await t.grpc.auth.requestPasswordReset({ email: u.email }, fromAddress());
    const link = await nthLink(u.userId, 1);
    await t.grpc.auth.resetPassword({ resetToken: link.token, newPassword: NEW_PASSWORD }, fromAddress());
    expect((await t.grpc.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('mfaChallenge');
  });

  it('lifts the sign-in lock of the account', async () => {
    const address = fromAddress();
    const u = await signUp(t.connect);
    for (let i = 0; i < 3; i++) await failure(t.connect.auth.login({ email: u.email, password: 'wrong-password-entirely-1' }, address));
    expect(errorIdOf(await failure(t.connect.auth.login({ email: u.email, password: TEST_PASSWORD }, address)))).toBe('ERR_TOO_MANY_ATTEMPTS');
    await t.connect.auth.requestPasswordReset({ email: u.email }, address);
    const link = await nthLink(u.session.user!.id, 1);
    await t.connect.auth.resetPassword({ resetToken: link.token, newPassword: NEW_PASSWORD }, address);
    expect((await t.connect.auth.login({ email: u.email, password: NEW_PASSWORD }, address)).result.case).toBe('session');
  });

  it('answers RESOURCE_EXHAUSTED to an address past its limit', async () => {
    const address = fromAddress();
    for (let i = 0; i < 5; i++) await t.grpc.auth.requestPasswordReset({ email: uniqueEmail('probe') }, address);
    const refused = await failure(t.grpc.auth.requestPasswordReset({ email: uniqueEmail('probe') }, address));
    expect(codeOf(refused)).toBe(8);
    expect(errorIdOf(refused)).toBe('ERR_TOO_MANY_RESET_REQUESTS');
  });

  it('refuses a token that was never issued', async () => {
    const forged = `rst_${'A'.repeat(43)}`;
    expect(errorIdOf(await failure(t.connect.auth.resetPassword({ resetToken: forged, newPassword: NEW_PASSWORD }, fromAddress())))).toBe('ERR_RESET_TOKEN_INVALID');
    expect(errorIdOf(await failure(t.connect.auth.resetPassword({ resetToken: 'not-a-token', newPassword: NEW_PASSWORD }, fromAddress())))).toBe('ERR_RESET_TOKEN_INVALID');
  });

  it('never writes a reset token or link to the log', async () => {
    const links = await resetLinks();
    expect(links.length).toBeGreaterThan(0);
    const logs = t.logs();
    for (const l of links) {
      expect(logs).not.toContain(l.token);
      expect(logs).not.toContain(l.token.slice(4));
    }
    expect(logs).not.toContain(RESET_URL);
    expect(logs).not.toMatch(/rst_[A-Za-z0-9_-]{20}/);
  });
});
