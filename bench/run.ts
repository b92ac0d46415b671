import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AuthService } from '../src/gen/identity/v1/auth_pb.js';
import { configSchema } from '../src/shared/config.js';
import { runRawVerifies } from './lib/argon2-raw.js';
import { Checks } from './lib/checks.js';
import { introspectCalls, measureIntrospection } from './lib/introspect-load.js';
import { interleave, spread } from './lib/measure.js';
import { tableScans } from './lib/pg-stats.js';
import { machine, toMarkdown, verdict, writeReport, type Report, type Row } from './lib/report.js';
import { cpuSeconds, delta, rpcCounts } from './lib/server-stats.js';
import { closedLoop } from './lib/stats.js';
import { prepareBackends, startService, type Backends, type ServiceProcess } from './lib/target.js';

/**
 * `npm run bench`: the identity service in its own process, measured against baselines taken on
 * the same machine in the same run. Exits non-zero when a correctness check fails (a figure from
 * wrong answers is worthless); a missed target is reported, not fatal.
 */

const H2 = { clients: 16, streamsPerClient: 10, warmupRequests: 3000, rounds: 3, sliceSeconds: 4 };
/** Logins in flight; the service's HASH_CONCURRENCY is set to the largest so it never queues. */
const LOGIN_LEVELS = [4, 8];
const LOGIN = { rounds: 2, sliceSeconds: 5 };
const REFRESH = { concurrency: 16, seconds: 10 };
const TARGETS = { introspect: 0.8, login: 0.9 };
/**
 * The second process: both Introspect caches off, so every call verifies the signature and looks
 * the user up in PostgreSQL (concurrent lookups of one user still share a query; the report counts them).
 */
const CACHES_OFF = { ACCESS_TOKEN_CACHE_SIZE: '0', INTROSPECTION_CACHE_TTL_MS: '0' };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const defaults = configSchema.parse({});
const log = (msg: string) => process.stdout.write(`[bench] ${msg}\n`);
const checks = new Checks(log);
const check = checks.check.bind(checks);

async function main(): Promise<number> {
  process.chdir(root);
  const started = Date.now();
  const loadAtStart = os.loadavg()[0]!;
  if (loadAtStart > os.cpus().length / 2) log(`warning: load average ${loadAtStart.toFixed(2)} before start; figures will be noisy`);
  const backends = await prepareBackends(log);
  const introspectionSecret = randomBytes(32).toString('base64url');
  const maxLevel = Math.max(...LOGIN_LEVELS);
  const threadpool = maxLevel + 4;
  const h2Label = `h2load -c ${H2.clients} -m ${H2.streamsPerClient}`;
  let service: ServiceProcess | undefined;
  let cold: { backends: Backends; service?: ServiceProcess } | undefined;
  const rows: Row[] = [];
  try {
    service = await startService(backends, {
      SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      INTROSPECTION_CLIENTS: `bench:${introspectionSecret}`,
      LOGIN_MAX_FAILURES_PER_IP: '1000000',
      HASH_CONCURRENCY: String(maxLevel),
      // Argon2 runs on the libuv pool: room for every hash plus the pool's other users.
      UV_THREADPOOL_SIZE: String(threadpool),
    });
    log(`identity pid ${service.pid} on ${service.grpcUrl} (database: ${backends.database}, redis: ${!!backends.redisUrl}, nats: ${!!backends.nats})`);
    const svc = service;
    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: svc.grpcUrl }));

    // Users: one per login worker, so the load is not one account's row over and over.
    const password = `bench-${randomBytes(9).toString('base64url')}-harbour`;
    const tag = randomBytes(4).toString('hex');
    const emails = Array.from({ length: maxLevel }, (_, i) => `bench-${tag}-${i}@example.test`);
    for (const email of emails) await auth.register({ email, password });
    const first = await auth.login({ email: emails[0]!, password });
    if (first.result.case !== 'session') throw new Error('login did not return a session');

    // (a) Introspect vs the no-op GetJwks on the same pipeline, and grpc-js's own health check.
    // One token replayed: after the first call both caches answer, so this is the warm path.
    const warm = await measureIntrospection({ svc, accessToken: first.result.value.accessToken, introspectionSecret, withHealth: true }, H2, checks, log);

    // (b) The cold path: a second process with both caches off, on a database of its own so that
    // PostgreSQL's counters for its users table count this process's reads and nothing else.
    cold = { backends: await prepareBackends(log) };
    cold.service = await startService(cold.backends, { SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64'), INTROSPECTION_CLIENTS: `bench:${introspectionSecret}`, ...CACHES_OFF });
    log(`caches-off identity pid ${cold.service.pid} on ${cold.service.grpcUrl} (${Object.entries(CACHES_OFF).map(([k, v]) => `${k}=${v}`).join(' ')})`);
    const coldAuth = createClient(AuthService, createGrpcTransport({ baseUrl: cold.service.grpcUrl }));
    const coldEmail = `bench-${tag}-cold@example.test`;
    await coldAuth.register({ email: coldEmail, password });
    const coldLogin = await coldAuth.login({ email: coldEmail, password });
    if (coldLogin.result.case !== 'session') throw new Error('login on the caches-off service did not return a session');
    const off = await measureIntrospection(
      { svc: cold.service, accessToken: coldLogin.result.value.accessToken, introspectionSecret, label: 'caches off', withHealth: false },
      H2,
      checks,
      log,
    );
    const coldCalls = await introspectCalls(cold.service);
    const coldReads = await stopCold(cold);
    const readsNote =
      coldReads === undefined
        ? 'user-row reads not counted (embedded database)'
        : `PostgreSQL counted ${coldReads} users-table reads for ${coldCalls} Introspect calls (incl. the few of Register/Login), one per ${(coldCalls / Math.max(1, coldReads)).toFixed(0)} calls: with one token in flight on every stream, concurrent lookups of the same user share one query`;

    rows.push(
      {
        name: `Introspect, default config (one token, repeated; ${h2Label})`,
        rps: warm.introspect.rps,
        latency: warm.introspect.latency,
        serverCores: warm.introspect.cores,
        baseline: { name: 'GetJwks no-op, same pipeline', rps: warm.jwks.rps, latency: warm.jwks.latency },
        ratio: warm.correct ? warm.introspect.rps / warm.jwks.rps : undefined,
        target: TARGETS.introspect,
        note: `req/s per slice ${spread(warm.introspect)} vs GetJwks ${spread(warm.jwks)}`,
      },
      {
        name: `Introspect, caches off (signature verify every call, user row from PostgreSQL shared by concurrent calls; one token; ${h2Label})`,
        rps: off.introspect.rps,
        latency: off.introspect.latency,
        serverCores: off.introspect.cores,
        baseline: { name: 'GetJwks no-op, same pipeline, same process', rps: off.jwks.rps, latency: off.jwks.latency },
        ratio: off.correct ? off.introspect.rps / off.jwks.rps : undefined,
        note: `informational, second process with ${Object.entries(CACHES_OFF).map(([k, v]) => `${k}=${v}`).join(', ')} on its own database; ${readsNote}; req/s per slice ${spread(off.introspect)} vs GetJwks ${spread(off.jwks)}`,
      },
      {
        name: 'grpc.health.v1 Check (grpc-js floor)',
        rps: warm.health!.rps,
        latency: warm.health!.latency,
        serverCores: warm.health!.cores,
        note: warm.healthCorrect ? `GetJwks reaches ${((warm.jwks.rps / warm.health!.rps) * 100).toFixed(0)}% of the bare grpc-js floor` : 'health check failed',
      },
    );

    // (c) Login vs bare argon2.verify at the same concurrency; collects refresh tokens for (d).
    const refreshTokens: string[] = [first.result.value.refreshToken];
    const argon2 = { memoryKiB: defaults.ARGON2_MEMORY_KIB, timeCost: defaults.ARGON2_TIME_COST, parallelism: defaults.ARGON2_PARALLELISM };
    for (const level of LOGIN_LEVELS) {
      const login = async (w: number) => {
        const res = await auth.login({ email: emails[w % emails.length]!, password });
        if (res.result.case !== 'session') throw new Error(`login answered ${res.result.case}`);
        refreshTokens.push(res.result.value.refreshToken);
        return true;
      };
      await closedLoop(level, 2000, login); // warm-up
      let failed = 0;
      let firstError: string | undefined;
      const m = await interleave(LOGIN.rounds, ['raw', 'login'] as const, async (name) => {
        if (name === 'raw') {
          const raw = await runRawVerifies(argon2, level, LOGIN.sliceSeconds * 1000, threadpool);
          return { count: raw.verifies, seconds: raw.seconds, samplesMs: raw.samplesMs };
        }
        const cpu0 = await cpuSeconds(svc.pid);
        const r = await closedLoop(level, LOGIN.sliceSeconds * 1000, login);
        const cpu1 = await cpuSeconds(svc.pid);
        failed += r.failed;
        firstError ??= r.firstError;
        return { count: r.ok, seconds: r.seconds, samplesMs: r.samplesMs, cpuSeconds: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 };
      });
      const ok = check(`Login ×${level}: every call returned a session`, failed === 0 && m.login.count > 0, `${m.login.count} sessions, ${failed} failed${firstError ? ` (${firstError})` : ''}`);
      rows.push({
        name: `Login, ${level} in flight (Connect gRPC client)`,
        rps: m.login.rps,
        latency: m.login.latency,
        serverCores: m.login.cores,
        baseline: { name: `argon2.verify ×${level}, own process`, rps: m.raw.rps, latency: m.raw.latency },
        ratio: ok ? m.login.rps / m.raw.rps : undefined,
        target: TARGETS.login,
        note: `per slice ${spread(m.login)} vs argon2 ${spread(m.raw)}`,
      });
    }

    // (d) Refresh: every token is presented once; each answer's successor goes to the back of the queue.
    const queue = refreshTokens.slice();
    const before = await rpcCounts(svc.opsUrl);
    const cpu0 = await cpuSeconds(svc.pid);
    const rr = await closedLoop(REFRESH.concurrency, REFRESH.seconds * 1000, async () => {
      const token = queue.shift();
      if (token === undefined) return false;
      const res = await auth.refresh({ refreshToken: token });
      if (!res.session?.refreshToken) throw new Error('refresh returned no session');
      queue.push(res.session.refreshToken);
      return true;
    });
    const cpu1 = await cpuSeconds(svc.pid);
    const d = delta(before, await rpcCounts(svc.opsUrl), 'identity.v1.AuthService/Refresh');
    check(
      'Refresh: every call rotated its token',
      rr.failed === 0 && rr.ok > 0 && d.ok === rr.ok && Object.keys(d.other).length === 0,
      `${rr.ok} rotations over ${refreshTokens.length} families, ${rr.failed} failed${rr.firstError ? ` (${rr.firstError})` : ''}; server counted ${d.ok} ok ${JSON.stringify(d.other)}`,
    );
    rows.push({
      name: `Refresh, ${REFRESH.concurrency} in flight (Connect gRPC client)`,
      rps: rr.ok / rr.seconds,
      latency: rr.latency,
      serverCores: cores(cpu0, cpu1, rr.seconds),
      note: `${refreshTokens.length} sessions from the Login runs, each rotation's successor replayed later; DATABASE_POOL_MAX=${defaults.DATABASE_POOL_MAX}`,
    });
  } finally {
    if (cold) await stopCold(cold).catch((e) => log(`caches-off service not stopped cleanly: ${(e as Error).message}`));
    await service?.stop();
    await backends.cleanup();
    if (service) checkServerLog('no error logged by the service', service);
  }

  const report: Report = {
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      'system under test': `identity as its own process (node --import tsx src/identity/main.ts), LOG_LEVEL=warn, default config otherwise; for the caches-off row a second identity process (own ports, own database/stream/key prefix on the same PostgreSQL, Redis and NATS) with ${Object.entries(CACHES_OFF).map(([k, v]) => `${k}=${v}`).join(', ')}, started after the default-config Introspect figures and stopped before Login`,
      backends: `PostgreSQL ${backends.database} (fresh database), Redis ${backends.redisUrl ? 'local' : 'none'}, NATS ${backends.nats ? 'local JetStream (fresh stream)' : 'none'}`,
      'load generators': `h2load ${H2.clients} connections × ${H2.streamsPerClient} streams, ${H2.warmupRequests} warm-up requests each, then ${H2.rounds} rounds of ${H2.sliceSeconds} s slices alternating GetJwks / Introspect / Health (caches-off process: GetJwks / Introspect, same settings); Login and Raw argon2 alternate in ${LOGIN.rounds} rounds of ${LOGIN.sliceSeconds} s after a 2 s warm-up; Login and Refresh via a Connect gRPC client in the bench process`,
      'background load (1-min load average, start → end)': `${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} CPUs`,
      argon2: `m=${defaults.ARGON2_MEMORY_KIB} KiB, t=${defaults.ARGON2_TIME_COST}, p=${defaults.ARGON2_PARALLELISM}; HASH_CONCURRENCY=${Math.max(...LOGIN_LEVELS)}, UV_THREADPOOL_SIZE=${threadpool} for both service and baseline`,
      'total run time': `${((Date.now() - started) / 1000).toFixed(0)} s`,
    },
    rows,
    checks: checks.list,
  };
  const files = await writeReport(path.join(root, 'bench/results'), report);
  process.stdout.write(`\n${toMarkdown(report)}\n`);
  for (const r of rows.filter((x) => x.target !== undefined)) log(`${r.name}: ratio ${r.ratio?.toFixed(2) ?? '—'} → ${verdict(r)}`);
  log(`written ${path.relative(root, files.md)} and ${path.relative(root, files.json)}`);
  return checks.allOk ? 0 : 1;
}

/**
 * Stops the caches-off process (its pool closes, so PostgreSQL publishes the counters of its
 * connections), reads how often it scanned the users table, then drops its database, stream and
 * keys. A second call does nothing.
 */
async function stopCold(c: { backends: Backends; service?: ServiceProcess; stopped?: boolean }): Promise<number | undefined> {
  if (c.stopped) return undefined;
  c.stopped = true;
  try {
    if (!c.service) return undefined;
    await c.service.stop();
    checkServerLog('caches off: no error logged by the service', c.service);
    if (!c.backends.databaseUrl) return undefined;
    return await tableScans(c.backends.databaseUrl, 'users');
  } finally {
    await c.backends.cleanup();
  }
}

function checkServerLog(name: string, svc: ServiceProcess): void {
  const errors = svc.output().split('\n').filter((l) => /"level":(50|60)/.test(l));
  check(name, errors.length === 0, errors.length === 0 ? 'none' : errors.slice(0, 3).join(' | '));
}

function cores(cpu0: number | undefined, cpu1: number | undefined, seconds: number): number | undefined {
  return cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / seconds;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
