import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Code, ConnectError, createClient, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDownstream, type Downstream } from '../../examples/downstream-service/server.js';
import { GreeterService, type HelloResponse } from '../../examples/downstream-service/greeter.js';
import { fromBinary } from '@bufbuild/protobuf';
import { EmailVerificationRequestedSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { LatchAuth, LatchAuthError, requireUser, requireVerifiedEmail, withLatch, type Introspect } from '../../src/sdk/index.js';
import { introspectionClient } from '../../src/sdk/introspection-client.js';
import { waitFor } from '../events/support.js';
import { enrollOverRpc, mfaChallenge } from '../identity/second-factor-support.js';
import { bearer, signUp, startTestIdentity, TEST_PASSWORD, type TestIdentity } from '../helpers/identity.js';
import { describeWithNats, services } from '../helpers/services.js';

const codeOf = (e: unknown) => (e instanceof Error ? ConnectError.from(e).code : 'ok');

/** Latch's clock, moved forward to expire tokens without waiting. */
const clock = { offsetMs: 0, nowMs: () => Date.now() + clock.offsetMs };

describeWithNats('SDK against a real Latch (examples/downstream-service)', () => {
  let t: TestIdentity;
  let nc: NatsConnection;
  let auth: LatchAuth;
  let svc: Downstream;
  let introspectCalls = 0;

  beforeAll(async () => {
    t = await startTestIdentity({ clock });
    nc = await connect({ servers: services().natsUrl! });
    const counter: Interceptor = (next) => (req) => {
      introspectCalls++;
      return next(req);
    };
    auth = await LatchAuth.create({
      introspection: { credential: t.introspectionSecret, transport: createGrpcTransport({ baseUrl: t.grpcUrl, interceptors: [counter] }) },
      // A long TTL: within these tests only a revocation can drop an entry.
      cache: { ttlMs: 600_000 },
      revocation: { connection: nc, subjectPrefix: t.config.EVENTS_SUBJECT_PREFIX },
    });
    svc = await startDownstream(auth);
  });
  afterAll(async () => {
    await svc?.close();
    await auth?.close();
    await nc?.close();
    await t?.stop();
  });

  type Method = 'hello' | 'adminHello' | 'secureHello';
  type Greeter = Record<Method, (req: object, opts?: object) => Promise<HelloResponse>>;
  const greeter = (transport: Transport) => createClient(GreeterService, transport) as unknown as Greeter;
  const viaConnect = () => greeter(createConnectTransport({ baseUrl: svc.httpUrl, httpVersion: '1.1' }));
  const viaGrpc = () => greeter(createGrpcTransport({ baseUrl: svc.grpcUrl }));
  const opts = (token?: string) => (token ? bearer(token) : {});
  /** The outcome of one call on each transport: a Code name, or "ok" + the user id. */
  async function everywhere(method: Method, token?: string): Promise<string[]> {
    const c = viaConnect()[method]({}, opts(token));
    const g = viaGrpc()[method]({}, opts(token));
    const path = method === 'adminHello' ? '/admin' : '/me';
    const h = method === 'secureHello' ? undefined : fetch(svc.httpUrl + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const out: string[] = [];
    for (const p of [c, g]) {
      try {
        out.push(`ok ${(await p).userId}`);
      } catch (e) {
        out.push(Code[codeOf(e) as Code]);
      }
    }
    if (h) {
      const r = await h;
      const body = (await r.json()) as { userId?: string; reason?: string };
      out.push(r.status === 200 ? `ok ${body.userId}` : `${r.status} ${body.reason}`);
    }
    return out;
  }

  it('lets a signed-in user through on Connect, gRPC and plain HTTP, with the principal in the handler', async () => {
    const { session } = await signUp(t.grpc);
    const id = session.user!.id;
    expect(await everywhere('hello', session.accessToken)).toEqual([`ok ${id}`, `ok ${id}`, `ok ${id}`]);
    const res = await viaConnect().hello({}, bearer(session.accessToken));
    expect(res).toMatchObject({ userId: id, email: session.user!.email, role: 'user' });
  });

  it('refuses a call without a token or with a token that is not one', async () => {
    expect(await everywhere('hello')).toEqual(['Unauthenticated', 'Unauthenticated', '401 no_token']);
    const { session } = await signUp(t.grpc);
    expect(await everywhere('hello', `${session.accessToken}x`)).toEqual(['Unauthenticated', 'Unauthenticated', '401 inactive_token']);
  });

  it('refuses an expired token', async () => {
    const { session } = await signUp(t.grpc);
    clock.offsetMs = (t.config.ACCESS_TOKEN_TTL_SECONDS + 120) * 1000;
    try {
      expect(await everywhere('hello', session.accessToken)).toEqual(['Unauthenticated', 'Unauthenticated', '401 inactive_token']);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('refuses the wrong role and lets an admin through', async () => {
    const u = await signUp(t.grpc);
    expect(await everywhere('adminHello', u.session.accessToken)).toEqual(['PermissionDenied', 'PermissionDenied', '403 wrong_role']);
    await t.app.internals.db.orm.em.fork().execute(`update users set role = 'admin' where id = ?`, [u.session.user!.id]);
    t.app.internals.users.invalidate(u.session.user!.id);
    const admin = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (admin.result.case !== 'session') throw new Error('expected a session');
    const id = u.session.user!.id;
    expect(await everywhere('adminHello', admin.result.value.accessToken)).toEqual([`ok ${id}`, `ok ${id}`, `ok ${id}`]);
  });

  it('requireMfa refuses a session without a second factor and accepts one with it', async () => {
    const e = await enrollOverRpc(t.grpc);
    // The enrollment token was issued for a password-only session.
    expect(await everywhere('secureHello', e.accessToken)).toEqual(['PermissionDenied', 'PermissionDenied']);
    const challengeToken = await mfaChallenge(t.grpc, e.email, e.password);
    const done = await t.grpc.auth.completeMfa({ challengeToken, code: { case: 'totpCode', value: e.totp(1) } });
    expect(await everywhere('secureHello', done.session!.accessToken)).toEqual([`ok ${e.userId}`, `ok ${e.userId}`]);
  });

  it('refuses a user whose password must change', async () => {
    const u = await signUp(t.grpc);
    await t.app.internals.db.orm.em.fork().execute(`update users set password_must_change = true where id = ?`, [u.session.user!.id]);
    t.app.internals.users.invalidate(u.session.user!.id);
    const res = await t.grpc.auth.login({ email: u.email, password: TEST_PASSWORD });
    if (res.result.case !== 'session') throw new Error('expected a session');
    expect(await everywhere('hello', res.result.value.accessToken)).toEqual(['PermissionDenied', 'PermissionDenied', '403 password_must_change']);
  });

  it('requireVerifiedEmail refuses an unverified address and accepts it once VerifyEmail succeeded', async () => {
    const u = await signUp(t.grpc);
    const id = u.session.user!.id;
    const outcome = (token: string) =>
      auth.authorize(`Bearer ${token}`, requireVerifiedEmail).then(
        (p) => `ok ${p.userId} ${p.emailVerified}`,
        (e: unknown) => (e instanceof LatchAuthError ? `${e.code} ${e.reason}` : String(e)),
      );
    expect(await outcome(u.session.accessToken)).toBe('permission_denied email_not_verified');
    await waitFor(async () => (await verificationTokens(id)).length > 0, 10_000, 25);
    const [verificationToken] = await verificationTokens(id);
    await t.grpc.auth.verifyEmail({ verificationToken });
    // A new token: the first one's answer is cached for the TTL (docs/sdk.md).
    const again = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (again.result.case !== 'session') throw new Error('expected a session');
    expect(await outcome(again.result.value.accessToken)).toBe(`ok ${id} true`);
  });

  async function verificationTokens(userId: string): Promise<string[]> {
    const rows: Array<{ payload: Buffer }> = await t.app.internals.db.orm.em
      .fork()
      .execute(`select payload from outbox where subject = 'email_verification_requested' order by seq`);
    return rows
      .map((r) => fromBinary(EmailVerificationRequestedSchema, r.payload))
      .filter((e) => e.userId === userId)
      .map((e) => new URL(e.verifyUrl).searchParams.get('token') ?? '');
  }

  /** Calls until refused; the cache answered before, so only the broadcast can have dropped the entry. */
  async function refusalDelayMs(token: string, since: number): Promise<number> {
    await waitFor(async () => codeOf(await viaConnect().hello({}, bearer(token)).catch((e: unknown) => e)) === Code.Unauthenticated, 5_000, 5);
    return Date.now() - since;
  }

  async function warm(token: string): Promise<void> {
    await viaConnect().hello({}, bearer(token));
    const before = introspectCalls;
    await viaConnect().hello({}, bearer(token));
    expect(introspectCalls, 'the second call is answered from the cache').toBe(before);
  }

  it('LogoutAll reaches the cache through NATS: every session of the user is refused', async () => {
    const u = await signUp(t.grpc);
    const other = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (other.result.case !== 'session') throw new Error('expected a session');
    await warm(u.session.accessToken);
    await warm(other.result.value.accessToken);
    const since = Date.now();
    await t.grpc.auth.logoutAll({}, bearer(u.session.accessToken));
    const delay = await refusalDelayMs(u.session.accessToken, since);
    await refusalDelayMs(other.result.value.accessToken, since);
    process.stdout.write(`SDK: LogoutAll reached the cache ${delay} ms after the call\n`);
  });

  it('Logout of one session reaches the cache through NATS and leaves the other session cached', async () => {
    const u = await signUp(t.grpc);
    const other = await t.grpc.auth.login({ email: u.email, password: u.password });
    if (other.result.case !== 'session') throw new Error('expected a session');
    const keep = other.result.value.accessToken;
    await warm(u.session.accessToken);
    await warm(keep);
    const since = Date.now();
    await t.grpc.auth.logout({ refreshToken: u.session.refreshToken }, bearer(u.session.accessToken));
    const delay = await refusalDelayMs(u.session.accessToken, since);
    process.stdout.write(`SDK: Logout (one session) reached the cache ${delay} ms after the call\n`);
    const before = introspectCalls;
    expect(await everywhere('hello', keep)).toEqual([`ok ${u.session.user!.id}`, `ok ${u.session.user!.id}`, `ok ${u.session.user!.id}`]);
    expect(introspectCalls, 'the other session is still answered from the cache').toBe(before);
  });

  it('coalesces concurrent requests with the same token into one Introspect', async () => {
    const { session } = await signUp(t.grpc);
    const real = introspectionClient({ baseUrl: t.grpcUrl, credential: t.introspectionSecret });
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const held: Introspect = async (token) => {
      calls++;
      await gate;
      return real(token);
    };
    // No cache: only coalescing can keep the count at one.
    const bare = await LatchAuth.create({ introspection: { introspect: held }, cache: { maxEntries: 0 } });
    const n = 20;
    let arrived = 0;
    const guarded = withLatch(bare, requireUser, (_req, res, user) => res.end(user.userId));
    // The gate opens once every request has reached the guard (which asks the cache synchronously).
    const server: Server = createServer((req, res) => {
      guarded(req, res);
      if (++arrived === n) release();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const bodies = await Promise.all(Array.from({ length: n }, () => fetch(url, bearer(session.accessToken)).then((r) => r.text())));
      expect(bodies).toEqual(Array(n).fill(session.user!.id));
      expect(calls).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  // Last: stops Latch.
  it('Latch stopped: a token not in the cache is UNAVAILABLE, never anonymous', async () => {
    const { session } = await signUp(t.grpc);
    await t.stop();
    expect(await everywhere('hello', session.accessToken)).toEqual(['Unavailable', 'Unavailable', '503 latch_unavailable']);
    expect(await everywhere('hello')).toEqual(['Unauthenticated', 'Unauthenticated', '401 no_token']);
  });
});
