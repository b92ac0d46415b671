import net from 'node:net';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyTestDatabase, type EmptyTestDatabase } from '../helpers/database.js';
import { bearer, signUp, startTestIdentity, TEST_PASSWORD, type Clients, type TestIdentity } from '../helpers/identity.js';

/**
 * A TCP proxy in front of PostgreSQL that can stall: paused, it stops moving bytes both ways
 * but keeps every socket open (and accepts new ones), as a frozen primary or a partition does.
 * Bytes held while paused are delivered on resume, like a server waking up.
 */
class StallingProxy {
  private paused = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<StallingProxy> {
    const p = new StallingProxy(target);
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  pause(): void {
    this.paused = true;
    for (const s of this.sockets) s.pause();
  }

  /**
   * `keepStalled`: the connections open now stay stalled for good (a partition that heals for new
   * connections while the old ones are dead on the far side); new connections flow again.
   */
  resume(opts: { keepStalled?: boolean } = {}): void {
    this.paused = false;
    if (opts.keepStalled) this.stalledForGood = new Set(this.sockets);
    else for (const s of this.sockets) s.resume();
  }

  private stalledForGood = new Set<net.Socket>();

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => this.sockets.delete(s));
      if (this.paused) s.pause();
    }
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => {
        if (!this.paused && !this.stalledForGood.has(from)) from.resume();
      });
      from.once('close', () => to.destroy());
    };
    forward(client, upstream);
    forward(upstream, client);
  }
}

/** Calls `fn` and returns how long it took and the error it failed with (or undefined). */
async function timed(fn: () => Promise<unknown>): Promise<{ ms: number; err?: ConnectError }> {
  const t0 = performance.now();
  try {
    await fn();
    return { ms: performance.now() - t0 };
  } catch (e) {
    return { ms: performance.now() - t0, err: ConnectError.from(e) };
  }
}

// The bound the instance is configured with, and what the test accepts (the bound plus room for
// a loaded machine: the property is "an answer in seconds", not a precise figure).
const BOUND_MS = 1000;
const ACCEPT_MS = 5000;
// A client-side deadline far beyond ACCEPT_MS, so a hang shows as a failed assertion, not a stuck run.
const CALL = { timeoutMs: 20_000 };

/** docs/security.md I3, I5: a database that accepts connections but never answers gives UNAVAILABLE, quickly. */
describe('stalled database (I3, I5)', () => {
  let db: EmptyTestDatabase;
  let proxy: StallingProxy;
  let t: TestIdentity;
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    db = await createEmptyTestDatabase();
    const real = new URL(db.url);
    proxy = await StallingProxy.start({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(db.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    t = await startTestIdentity({
      databaseUrl: viaProxy.toString(),
      redis: false,
      nats: false,
      env: {
        DATABASE_CONNECT_TIMEOUT_MS: String(BOUND_MS),
        DATABASE_ACQUIRE_TIMEOUT_MS: String(BOUND_MS),
        DATABASE_STATEMENT_TIMEOUT_MS: String(BOUND_MS),
      },
    });
  });

  afterAll(async () => {
    proxy?.resume();
    await t?.stop();
    await proxy?.stop();
    await db?.drop();
    // The figures the report quotes.
    console.info('stalled database: answer times (ms)', measured);
  });

  function expectUnavailable(name: string, r: { ms: number; err?: ConnectError }): void {
    measured[name] = Math.round(r.ms);
    expect(r.err, `${name} succeeded against a stalled database`).toBeDefined();
    expect(r.err!.code, `${name}: ${r.err!.message}`).toBe(Code.Unavailable);
    expect(['ERR_DATABASE_UNAVAILABLE', 'ERR_BACKEND_UNAVAILABLE']).toContain(r.err!.metadata.get('latch-error-id'));
    expect(Number(r.err!.metadata.get('retry-after'))).toBeGreaterThan(0);
    expect(r.ms, `${name} took ${Math.round(r.ms)} ms`).toBeLessThan(ACCEPT_MS);
  }

  it.each([
    ['gRPC', (x: TestIdentity) => x.grpc],
    ['Connect', (x: TestIdentity) => x.connect],
  ])('over %s: Introspect, Login and Refresh answer UNAVAILABLE while stalled and succeed after', async (transport, pick) => {
    const c: Clients = pick(t);
    const caller = bearer(t.introspectionSecret);
    // Introspected only while stalled, so its state is not cached.
    const fresh = await signUp(c);
    const other = await signUp(c);

    proxy.pause();
    try {
      const introspect = () => c.introspection.introspect({ token: fresh.session.accessToken }, { ...caller, ...CALL });
      const login = () => c.auth.login({ email: other.email, password: TEST_PASSWORD }, CALL);
      const refresh = () => c.auth.refresh({ refreshToken: other.session.refreshToken }, CALL);
      expectUnavailable(`${transport} Introspect`, await timed(introspect));
      expectUnavailable(`${transport} Login`, await timed(login));
      expectUnavailable(`${transport} Refresh`, await timed(refresh));

      const t0 = performance.now();
      const [ops, http] = await Promise.all([fetch(`${t.opsUrl}/readyz`), fetch(`${t.httpUrl}/readyz`)]);
      measured[`${transport} /readyz`] = Math.round(performance.now() - t0);
      expect([ops.status, http.status]).toEqual([503, 503]);
    } finally {
      proxy.resume();
    }

    // Recovery without a restart. A connection attempt made during the stall may still fail just
    // after it (within one connect bound), so readiness comes first, as an orchestrator does it.
    const t1 = performance.now();
    while ((await fetch(`${t.opsUrl}/readyz`)).status !== 200) {
      expect(performance.now() - t1, 'not ready again 10 s after the database answered').toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    measured[`${transport} ready again after`] = Math.round(performance.now() - t1);
    const info = await c.introspection.introspect({ token: fresh.session.accessToken }, { ...caller, ...CALL });
    expect(info.active).toBe(true);
    const login = await c.auth.login({ email: other.email, password: TEST_PASSWORD }, CALL);
    expect(login.result.case).toBe('session');
    const rotated = await c.auth.refresh({ refreshToken: other.session.refreshToken }, CALL);
    expect(rotated.session?.refreshToken).toBeTruthy();
  });

  it('recovers after a partition that leaves the old connections dead: the pool does not keep them', async () => {
    const c = t.grpc;
    const users = await Promise.all([signUp(c), signUp(c), signUp(c)]);
    let tokens = users.map((u) => u.session.refreshToken);
    // Concurrent calls leave several connections in the pool, all of which die below.
    const refreshAll = () =>
      Promise.all(tokens.map((refreshToken) => c.auth.refresh({ refreshToken }, CALL))).then((r) => (tokens = r.map((x) => x.session!.refreshToken)));
    await refreshAll();

    proxy.pause();
    expectUnavailable('partition Refresh', await timed(() => c.auth.refresh({ refreshToken: tokens[0]! }, CALL)));
    proxy.resume({ keepStalled: true });

    // A call may still meet a dead connection (it is then closed); within a few bounds, every call succeeds.
    const t0 = performance.now();
    let streak = 0;
    let failures = 0;
    while (streak < 5 && performance.now() - t0 < 15_000) {
      const r = await timed(refreshAll);
      if (r.err) {
        expect(r.err.code).toBe(Code.Unavailable);
        failures++;
        streak = 0;
      } else streak++;
    }
    measured['partition: calls failed after healing'] = failures;
    measured['partition: ms until 5 successes in a row'] = Math.round(performance.now() - t0);
    expect(streak).toBe(5);
  });

  it('logs the outage by reason, without statements or their parameters', () => {
    const logs = t.logs();
    expect(logs).toMatch(/"reason":"(statement timeout|connect timeout|pool acquire timeout|connection lost)"/);
    expect(logs).not.toContain(TEST_PASSWORD);
  });
});
