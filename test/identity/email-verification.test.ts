import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBinary } from '@bufbuild/protobuf';
import { ConnectError } from '@connectrpc/connect';
import { EmailVerificationRequestedSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { ManualClock } from '../../src/shared/clock.js';
import { waitFor } from '../events/support.js';
import { bearer, startTestIdentity, TEST_PASSWORD, uniqueEmail, type Clients, type TestIdentity } from '../helpers/identity.js';
import { codeOf, errorIdOf } from './second-factor-support.js';

/**
 * Email verification over gRPC and Connect against real PostgreSQL (docs/security.md V1): the
 * link is read from its event in the outbox, as the mailer would receive it.
 */

const VERIFY_URL = 'https://app.example.test/verify-email';
const TTL_SECONDS = 300;
const MAX_PER_USER = 3;
const ADMIN_EMAIL = 'first-admin@example.test';
const ADMIN_PASSWORD = 'granite-orchard-slowly-5821';

interface Link {
  userId: string;
  email: string;
  verifyUrl: string;
  token: string;
  expiresAtMs: number;
}

async function verificationLinks(t: TestIdentity, userId?: string): Promise<Link[]> {
  const rows: Array<{ payload: Buffer }> = await t.app.internals.db.orm.em
    .fork()
    .execute(`select payload from outbox where subject = 'email_verification_requested' order by seq`);
  return rows
    .map((r) => fromBinary(EmailVerificationRequestedSchema, r.payload))
    .filter((e) => userId === undefined || e.userId === userId)
    .map((e) => ({
      userId: e.userId,
      email: e.email,
      verifyUrl: e.verifyUrl,
      token: new URL(e.verifyUrl).searchParams.get('token') ?? '',
      expiresAtMs: Number(e.expiresAt!.seconds) * 1000,
    }));
}

async function nthLink(t: TestIdentity, userId: string, n: number): Promise<Link> {
  await waitFor(async () => (await verificationLinks(t, userId)).length >= n, 10_000, 25);
  return (await verificationLinks(t, userId))[n - 1]!;
}

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

/** A manual clock that follows real time, plus an offset a test can move. */
function followingClock() {
  const clock = new ManualClock(Date.now());
  let offset = 0;
  const tick = setInterval(() => clock.set(Date.now() + offset), 10);
  return {
    clock,
    jump(ms: number) {
      offset += ms;
      clock.set(Date.now() + offset);
    },
    stop: () => clearInterval(tick),
  };
}

async function registerAndSignIn(c: Clients) {
  const email = uniqueEmail('verify');
  const registered = await c.auth.register({ email, password: TEST_PASSWORD });
  const res = await c.auth.login({ email, password: TEST_PASSWORD });
  if (res.result.case !== 'session') throw new Error('expected a session');
  return { email, userId: registered.user!.id, registered: registered.user!, session: res.result.value };
}

describe('email verification', () => {
  let t: TestIdentity;
  const time = followingClock();

  beforeAll(async () => {
    t = await startTestIdentity({
      clock: time.clock,
      env: {
        PUBLIC_VERIFY_EMAIL_URL: VERIFY_URL,
        EMAIL_VERIFICATION_TTL_SECONDS: String(TTL_SECONDS),
        EMAIL_VERIFICATION_MAX_PER_USER: String(MAX_PER_USER),
        // Long enough that only an invalidation can make Introspect see a verification.
        INTROSPECTION_CACHE_TTL_MS: '60000',
      },
    });
  });

  afterAll(async () => {
    time.stop();
    await t?.stop();
  });

  describe.each([
    ['gRPC', () => t.grpc],
    ['Connect', () => t.connect],
  ] as const)('over %s', (_, clients) => {
    let c: Clients;
    beforeAll(() => {
      c = clients();
    });

    it('Register emits a link on PUBLIC_VERIFY_EMAIL_URL; VerifyEmail marks the address verified for GetCurrentUser and an already cached Introspect', async () => {
      const u = await registerAndSignIn(c);
      expect(u.registered.emailVerified).toBe(false);
      expect(u.session.user!.emailVerified).toBe(false);
      const link = await nthLink(t, u.userId, 1);
      expect(link.verifyUrl.startsWith(`${VERIFY_URL}?token=`)).toBe(true);
      expect(link.token).toMatch(/^vfy_[A-Za-z0-9_-]{43}$/);
      expect(link.email).toBe(u.email);
      expect(Math.abs(link.expiresAtMs - (time.clock.nowMs() + TTL_SECONDS * 1000))).toBeLessThan(60_000);

      // Both answers are now cached from the unverified state.
      const auth = bearer(u.session.accessToken);
      expect((await c.auth.getCurrentUser({}, auth)).user!.emailVerified).toBe(false);
      const before = await c.introspection.introspect({ token: u.session.accessToken }, bearer(t.introspectionSecret));
      expect(before.active).toBe(true);
      expect(before.emailVerified).toBe(false);

      // No sign-in needed: the token is the credential.
      const done = await c.auth.verifyEmail({ verificationToken: link.token });
      expect(done.user!.id).toBe(u.userId);
      expect(done.user!.emailVerified).toBe(true);

      expect((await c.auth.getCurrentUser({}, auth)).user!.emailVerified).toBe(true);
      const after = await c.introspection.introspect({ token: u.session.accessToken }, bearer(t.introspectionSecret));
      expect(after.active).toBe(true);
      expect(after.emailVerified).toBe(true);
      const refreshed = await c.auth.refresh({ refreshToken: u.session.refreshToken });
      expect(refreshed.session!.user!.emailVerified).toBe(true);

      const again = await failure(c.auth.verifyEmail({ verificationToken: link.token }));
      expect(codeOf(again)).toBe(3);
      expect(errorIdOf(again)).toBe('ERR_VERIFICATION_TOKEN_USED');

      const resend = await failure(c.auth.resendVerificationEmail({}, auth));
      expect(codeOf(resend)).toBe(9);
      expect(errorIdOf(resend)).toBe('ERR_EMAIL_ALREADY_VERIFIED');
    });

    it('only the newest link works after ResendVerificationEmail', async () => {
      const u = await registerAndSignIn(c);
      const older = await nthLink(t, u.userId, 1);
      expect(await c.auth.resendVerificationEmail({}, bearer(u.session.accessToken))).toBeDefined();
      const newer = await nthLink(t, u.userId, 2);
      expect(newer.token).not.toBe(older.token);
      const refused = await failure(c.auth.verifyEmail({ verificationToken: older.token }));
      expect(codeOf(refused)).toBe(3);
      expect(errorIdOf(refused)).toBe('ERR_VERIFICATION_TOKEN_SUPERSEDED');
      expect((await c.auth.verifyEmail({ verificationToken: newer.token })).user!.emailVerified).toBe(true);
    });

    it('a link past its lifetime is refused and changes nothing; a resent one works', async () => {
      const u = await registerAndSignIn(c);
      const link = await nthLink(t, u.userId, 1);
      time.jump(TTL_SECONDS * 1000 + 1000);
      const refused = await failure(c.auth.verifyEmail({ verificationToken: link.token }));
      expect(codeOf(refused)).toBe(3);
      expect(errorIdOf(refused)).toBe('ERR_VERIFICATION_TOKEN_EXPIRED');
      expect(String(refused)).toContain('verification_token has expired');
      // A new link needs a signed-in user.
      const login = await c.auth.login({ email: u.email, password: TEST_PASSWORD });
      if (login.result.case !== 'session') throw new Error('expected a session');
      expect(login.result.value.user!.emailVerified).toBe(false);
      await c.auth.resendVerificationEmail({}, bearer(login.result.value.accessToken));
      const fresh = await nthLink(t, u.userId, 2);
      expect((await c.auth.verifyEmail({ verificationToken: fresh.token })).user!.emailVerified).toBe(true);
    });

    it('limits ResendVerificationEmail per account with RESOURCE_EXHAUSTED and retry info', async () => {
      const u = await registerAndSignIn(c);
      const auth = bearer(u.session.accessToken);
      for (let i = 0; i < MAX_PER_USER; i++) await c.auth.resendVerificationEmail({}, auth);
      const refused = await failure(c.auth.resendVerificationEmail({}, auth));
      expect(codeOf(refused)).toBe(8);
      expect(errorIdOf(refused)).toBe('ERR_TOO_MANY_VERIFICATION_EMAILS');
      const retryAfter = Number(ConnectError.from(refused).metadata.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      await nthLink(t, u.userId, 1 + MAX_PER_USER);
      expect(await verificationLinks(t, u.userId)).toHaveLength(1 + MAX_PER_USER);
    });

    it('needs a signed-in user to resend', async () => {
      expect(codeOf(await failure(c.auth.resendVerificationEmail({})))).toBe(16);
    });

    it('refuses malformed and never-issued tokens with INVALID_ARGUMENT', async () => {
      const missing = await failure(c.auth.verifyEmail({ verificationToken: '' }));
      expect(codeOf(missing)).toBe(3);
      expect(errorIdOf(missing)).toBe('ERR_INVALID_ARGUMENT');
      expect(errorIdOf(await failure(c.auth.verifyEmail({ verificationToken: 'not-a-token' })))).toBe('ERR_VERIFICATION_TOKEN_INVALID');
      expect(errorIdOf(await failure(c.auth.verifyEmail({ verificationToken: `vfy_${'A'.repeat(43)}` })))).toBe('ERR_VERIFICATION_TOKEN_INVALID');
      // A reset token is no verification token.
      expect(errorIdOf(await failure(c.auth.verifyEmail({ verificationToken: `rst_${'A'.repeat(43)}` })))).toBe('ERR_VERIFICATION_TOKEN_INVALID');
    });
  });

  describe('and the account', () => {
    const db = () => t.app.internals.db.orm.em.fork();

    it('a disabled account cannot verify; its token stays unused', async () => {
      const u = await registerAndSignIn(t.grpc);
      const link = await nthLink(t, u.userId, 1);
      await db().execute(`update users set disabled = true where id = ?`, [u.userId]);
      const refused = await failure(t.grpc.auth.verifyEmail({ verificationToken: link.token }));
      expect(codeOf(refused)).toBe(3);
      expect(errorIdOf(refused)).toBe('ERR_VERIFICATION_TOKEN_INVALID');
      const rows: Array<{ v: Date | null }> = await db().execute(`select email_verified_at as v from users where id = ?`, [u.userId]);
      expect(rows[0]!.v).toBeNull();
    });

    it('a link sent to an address the account no longer has is refused', async () => {
      const u = await registerAndSignIn(t.connect);
      const link = await nthLink(t, u.userId, 1);
      await db().execute(`update users set email = ? where id = ?`, [uniqueEmail('changed'), u.userId]);
      const refused = await failure(t.connect.auth.verifyEmail({ verificationToken: link.token }));
      expect(codeOf(refused)).toBe(3);
      expect(errorIdOf(refused)).toBe('ERR_VERIFICATION_TOKEN_EMAIL_CHANGED');
    });

    it('of many parallel uses of one token exactly one verifies', async () => {
      const u = await registerAndSignIn(t.grpc);
      const link = await nthLink(t, u.userId, 1);
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? t.grpc : t.connect).auth.verifyEmail({ verificationToken: link.token })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(errorIdOf(r.reason)).toBe('ERR_VERIFICATION_TOKEN_USED');
    });

    it('never writes a verification token or link to the log', async () => {
      const links = await verificationLinks(t);
      expect(links.length).toBeGreaterThan(10);
      const logs = t.logs();
      for (const l of links) {
        expect(logs).not.toContain(l.token);
        expect(logs).not.toContain(l.token.slice(4));
      }
      expect(logs).not.toContain(VERIFY_URL);
      expect(logs).not.toMatch(/vfy_[A-Za-z0-9_-]{20}/);
    });
  });
});

describe('REQUIRE_VERIFIED_EMAIL=true', () => {
  let t: TestIdentity;

  beforeAll(async () => {
    t = await startTestIdentity({
      env: {
        PUBLIC_VERIFY_EMAIL_URL: VERIFY_URL,
        REQUIRE_VERIFIED_EMAIL: 'true',
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
      },
    });
  });

  afterAll(async () => {
    await t?.stop();
  });

  it.each([
    ['gRPC', () => t.grpc],
    ['Connect', () => t.connect],
  ] as const)('over %s: Login of an unverified account is FAILED_PRECONDITION, and OK once verified', async (_, clients) => {
    const c = clients();
    const email = uniqueEmail('required');
    const userId = (await c.auth.register({ email, password: TEST_PASSWORD })).user!.id;
    const link = await nthLink(t, userId, 1);

    const refused = await failure(c.auth.login({ email, password: TEST_PASSWORD }));
    expect(codeOf(refused)).toBe(9);
    expect(errorIdOf(refused)).toBe('ERR_EMAIL_NOT_VERIFIED');
    expect(String(refused)).toContain('not verified');
    // A wrong password still gets the one answer for bad credentials: the refusal says nothing to a guesser.
    expect(errorIdOf(await failure(c.auth.login({ email, password: 'wrong-password-entirely-1' })))).toBe('ERR_INVALID_CREDENTIALS');
    // The link in the inbox still works: a refused sign-in sends no new one while it does.
    expect(await verificationLinks(t, userId)).toHaveLength(1);

    await c.auth.verifyEmail({ verificationToken: link.token });
    const ok = await c.auth.login({ email, password: TEST_PASSWORD });
    expect(ok.result.case).toBe('session');
    if (ok.result.case === 'session') expect(ok.result.value.user!.emailVerified).toBe(true);
  });

  it('a refused sign-in sends a new link when the last one no longer works', async () => {
    const email = uniqueEmail('required');
    const userId = (await t.grpc.auth.register({ email, password: TEST_PASSWORD })).user!.id;
    await nthLink(t, userId, 1);
    await t.app.internals.db.orm.em.fork().execute(`update email_verification_tokens set expires_at = now() - interval '1 second' where user_id = ?`, [userId]);
    expect(errorIdOf(await failure(t.grpc.auth.login({ email, password: TEST_PASSWORD })))).toBe('ERR_EMAIL_NOT_VERIFIED');
    const fresh = await nthLink(t, userId, 2);
    await t.grpc.auth.verifyEmail({ verificationToken: fresh.token });
    expect((await t.grpc.auth.login({ email, password: TEST_PASSWORD })).result.case).toBe('session');
  });

  it('the bootstrapped admin starts verified and can sign in', async () => {
    const res = await t.connect.auth.login({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    expect(res.result.case).toBe('session');
    if (res.result.case === 'session') expect(res.result.value.user!.emailVerified).toBe(true);
  });

  it('never writes a verification token or link to the log', async () => {
    const links = await verificationLinks(t);
    expect(links.length).toBeGreaterThan(2);
    const logs = t.logs();
    for (const l of links) expect(logs).not.toContain(l.token);
    expect(logs).not.toContain(VERIFY_URL);
  });
});

describe('email verification with in-process events (no NATS)', () => {
  let t: TestIdentity;

  beforeAll(async () => {
    t = await startTestIdentity({ nats: false, env: { PUBLIC_VERIFY_EMAIL_URL: VERIFY_URL } });
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('prints the verification mail with its link (no SMTP_URL) and logs neither', async () => {
    const email = uniqueEmail('local');
    const userId = (await t.connect.auth.register({ email, password: TEST_PASSWORD })).user!.id;
    const link = await nthLink(t, userId, 1);
    const published = async () => {
      const rows: Array<{ n: number }> = await t.app.internals.db.orm.em
        .fork()
        .execute(`select count(*)::int as n from outbox where subject = 'email_verification_requested' and published_at is not null`);
      return rows[0]!.n >= 1;
    };
    await waitFor(published, 10_000, 25);
    await waitFor(() => t.mailOutput().includes(`To: ${email}\nSubject: Confirm your email address`), 10_000, 25);
    expect(t.mailOutput()).toContain(link.verifyUrl);
    const logs = t.logs();
    expect(logs).not.toContain(link.token);
    expect(logs).not.toContain(link.token.slice(4));
    expect(logs).not.toContain(VERIFY_URL);
    await t.connect.auth.verifyEmail({ verificationToken: link.token });
    expect((await t.connect.auth.login({ email, password: TEST_PASSWORD })).result.case).toBe('session');
  });
});
