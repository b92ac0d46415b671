import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LatchAuth, LatchAuthError, LocalVerifier, requireUser } from '../../src/sdk/index.js';
import { waitFor } from '../events/support.js';
import { bearer, signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';
import { describeWithNats, services } from '../helpers/services.js';

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof LatchAuthError ? `${e.code} ${e.reason}` : String(e)),
  );

describeWithNats('SDK local verification (JWKS) against a real Latch', () => {
  let t: TestIdentity;
  let nc: NatsConnection;
  let auth: LatchAuth;
  beforeAll(async () => {
    t = await startTestIdentity();
    nc = await connect({ servers: services().natsUrl! });
    const local = new LocalVerifier({ baseUrl: t.httpUrl, issuer: t.config.JWT_ISSUER, audience: t.config.JWT_AUDIENCE });
    // No answer cache: every call verifies the signature again, so only the revocation list can refuse.
    auth = await LatchAuth.create({
      introspection: local,
      cache: { maxEntries: 0 },
      revocation: { connection: nc, subjectPrefix: t.config.EVENTS_SUBJECT_PREFIX },
    });
  });
  afterAll(async () => {
    await auth?.close();
    await nc?.close();
    await t?.stop();
  });

  it('accepts a token signed by Latch without asking it, with what the token carries', async () => {
    const { session } = await signUp(t.grpc);
    const p = await auth.authorize(`Bearer ${session.accessToken}`, requireUser);
    expect(p).toMatchObject({ userId: session.user!.id, role: 'user', amr: ['pwd'], email: '', emailVerified: false });
    expect(p.sessionId).toBeTruthy();
  });

  it('refuses a tampered token and one that is not a JWT', async () => {
    const { session } = await signUp(t.grpc);
    const [h, body, s] = session.accessToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${s}`;
    expect(await outcome(auth.verify(forged))).toBe('unauthenticated inactive_token');
    expect(await outcome(auth.verify('garbage'))).toBe('unauthenticated inactive_token');
  });

  it('refuses the tokens of a revoked session once the broadcast arrives (LogoutAll and Logout)', async () => {
    const u = await signUp(t.grpc);
    const second = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (second.result.case !== 'session') throw new Error('expected a session');
    const other = second.result.value;
    await t.grpc.auth.logout({ refreshToken: other.refreshToken }, bearer(other.accessToken));
    await waitFor(async () => (await outcome(auth.verify(other.accessToken))) !== 'ok', 5_000, 5);
    expect(await outcome(auth.verify(u.session.accessToken))).toBe('ok');
    await t.grpc.auth.logoutAll({}, bearer(u.session.accessToken));
    await waitFor(async () => (await outcome(auth.verify(u.session.accessToken))) !== 'ok', 5_000, 5);
    expect(await outcome(auth.verify(u.session.accessToken))).toBe('unauthenticated inactive_token');
  });

  it('keeps verifying with the fetched keys while Latch is stopped (the trade-off of local mode)', async () => {
    const { session } = await signUp(t.grpc);
    await t.stop();
    expect(await outcome(auth.verify(session.accessToken))).toBe('ok');
    // A verifier that never fetched the keys cannot tell: unavailable, not inactive.
    const cold = await LatchAuth.create({ introspection: new LocalVerifier({ baseUrl: t.httpUrl, issuer: t.config.JWT_ISSUER, audience: t.config.JWT_AUDIENCE }) });
    expect(await outcome(cold.verify(session.accessToken))).toBe('unavailable latch_unavailable');
  });
});
