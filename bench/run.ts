import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AuthService } from '../src/gen/identity/v1/auth_pb.js';
import { configSchema } from '../src/shared/config.js';
import { MAX_REVOKED_SESSIONS, MAX_USER_STATE_ENTRIES } from '../src/identity/introspection/user-state-cache.js';
import { runRawVerifies } from './lib/argon2-raw.js';
import { h2GrpcAuth } from './lib/h2-grpc-auth.js';
import { sdkRows } from './sdk.js';
import { distinctTokenRows } from './lib/distinct-rows.js';
import { runMailerBench } from './mailer.js';
import { Checks } from './lib/checks.js';
import { cpuMark, cpuPerCall, cpuShares } from './lib/cpu-share.js';
import { startFloor, type FloorProcess } from './lib/floor.js';
import { measureSet, vsRow as vs, type LoadShape } from './lib/load-set.js';
import { interleave, spread } from './lib/measure.js';
import { tableScans } from './lib/pg-stats.js';
import { machine, toMarkdown, verdict, writeReport, type Report, type Row } from './lib/report.js';
import {
  connectGetCurrentUser,
  connectIntrospect,
  floorTargets,
  grpcGetCurrentUser,
  grpcHealth,
  grpcIntrospect,
  introspectCalls,
  introspectResponseBytes,
  type Caller,
} from './lib/rpc-targets.js';
import { cpuSeconds, delta, rpcCounts } from './lib/server-stats.js';
import { closedLoop } from './lib/stats.js';
import { prepareBackends, startService, type Backends, type ServiceProcess } from './lib/target.js';

/**
 * `npm run bench`: the identity service in its own process, measured against floors that do no
 * work, taken on the same machine in the same run and interleaved with the figures they bound.
 * Exits non-zero when a correctness check fails (a figure from wrong answers is worthless); a
 * missed target is reported, not fatal.
 */

const GRPC: LoadShape = { clients: 16, streamsPerClient: 10 };
/** Connect JSON as browsers send it: HTTP/1.1, one request at a time per connection. */
const CONNECT: LoadShape = { clients: 64, streamsPerClient: 1, h1: true };
const SLICES = { warmupRequests: 3000, rounds: 8, sliceSeconds: 2 };
/** Logins in flight; the tuned service's HASH_CONCURRENCY is set to the largest so it never queues. */
const LOGIN_LEVELS = [4, 8];
const LOGIN = { rounds: 2, sliceSeconds: 5 };
const REFRESH = { concurrency: 16, seconds: 10, warmupSeconds: 2 };
/** 10,000 users' tokens in rotation; the memory pass presents memoryUsers × memoryTokensPerUser distinct tokens once each. */
const DISTINCT = { users: 10_000, memoryUsers: 1000, memoryTokensPerUser: 100, clients: 16, streams: 10, rounds: 4, sliceSeconds: 3 };
const TARGETS = { login: 0.9 };
/** Tuned: the only change from the shipped configuration that Introspect sees. */
const TUNED = { LOG_LEVEL: 'warn' };
/**
 * The caches-off process: both Introspect caches off, so every call verifies the signature and
 * looks the user up in PostgreSQL (concurrent lookups of one user still share a query; the report counts them).
 */
const CACHES_OFF = { ACCESS_TOKEN_CACHE_SIZE: '0', INTROSPECTION_CACHE_TTL_MS: '0' };

const CACHE_CAPS =
  `caches as shipped: verified access tokens ACCESS_TOKEN_CACHE_SIZE=${configSchema.parse({}).ACCESS_TOKEN_CACHE_SIZE} entries (oldest first out, none past its exp); ` +
  `user state ${MAX_USER_STATE_ENTRIES} users (cleared when full), each entry INTROSPECTION_CACHE_TTL_MS=${configSchema.parse({}).INTROSPECTION_CACHE_TTL_MS} ms; revoked session ids ${MAX_REVOKED_SESSIONS} per user`;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const defaults = configSchema.parse({});
const log = (msg: string) => process.stdout.write(`[bench] ${msg}\n`);
const checks = new Checks(log);
const check = checks.check.bind(checks);
const kv = (o: Record<string, string>) => Object.entries(o).map(([k, v]) => `${k}=${v}`).join(' ');
const shapeLabel = (s: LoadShape) => (s.h1 ? `h2load --h1 -c ${s.clients}` : `h2load -c ${s.clients} -m ${s.streamsPerClient}`);

interface Started {
  backends: Backends;
  service?: ServiceProcess;
  stopped?: boolean;
}

async function main(): Promise<number> {
  process.chdir(root);
  const started = Date.now();
  const loadAtStart = os.loadavg()[0]!;
  if (loadAtStart > os.cpus().length / 2) log(`warning: load average ${loadAtStart.toFixed(2)} before start; figures will be noisy`);
  const introspectionSecret = randomBytes(32).toString('base64url');
  const common = { SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64'), INTROSPECTION_CLIENTS: `bench:${introspectionSecret}` };
  const maxLevel = Math.max(...LOGIN_LEVELS);
  const threadpool = maxLevel + 4;
  const loginTuning = {
    LOGIN_MAX_FAILURES_PER_IP: '1000000',
    HASH_CONCURRENCY: String(maxLevel),
    // Argon2 runs on the libuv pool: room for every hash plus the pool's other users.
    UV_THREADPOOL_SIZE: String(threadpool),
  };
  const password = `bench-${randomBytes(9).toString('base64url')}-harbour`;
  const tag = randomBytes(4).toString('hex');
  const shipped: Started = { backends: await prepareBackends(log) };
  const tuned: Started = { backends: await prepareBackends(log) };
  let cold: Started | undefined;
  let floors: { grpc: FloorProcess; connect: FloorProcess } | undefined;
  const rows: Row[] = [];
  try {
    // Shipped: the default configuration, LOG_LEVEL included. Tuned: LOG_LEVEL=warn, plus the
    // Login settings (hash lanes, libuv pool, no per-address lock-out) that Introspect never touches.
    shipped.service = await startService(shipped.backends, common);
    tuned.service = await startService(tuned.backends, { ...common, ...TUNED, ...loginTuning });
    const S = shipped.service;
    const T = tuned.service;
    log(`shipped identity pid ${S.pid}, tuned identity pid ${T.pid} (database: ${shipped.backends.database}, redis: ${!!shipped.backends.redisUrl}, nats: ${!!shipped.backends.nats})`);

    const callerS = await signIn(S, `bench-${tag}-shipped@example.test`, password, introspectionSecret);
    const auth = createClient(AuthService, createGrpcTransport({ baseUrl: T.grpcUrl }));
    // Login users on the tuned process: one per login worker, so the load is not one account's row over and over.
    const emails = Array.from({ length: maxLevel }, (_, i) => `bench-${tag}-${i}@example.test`);
    for (const email of emails) await auth.register({ email, password });
    const first = await auth.login({ email: emails[0]!, password });
    if (first.result.case !== 'session') throw new Error('login did not return a session');
    const callerT: Caller = { accessToken: first.result.value.accessToken, userId: first.result.value.user!.id, introspectionSecret };

    // The floors answer with the shipped service's own Introspect response, encoded once.
    const response = await introspectResponseBytes(S, callerS);
    floors = { grpc: await startFloor('grpc', response), connect: await startFloor('connect', response) };
    log(`floors: bare grpc-js pid ${floors.grpc.pid}, bare connect-node pid ${floors.connect.pid} (${response.length}-byte prebuilt IntrospectResponse)`);
    const floor = floorTargets(floors, callerS, GRPC, CONNECT);

    // gRPC over HTTP/2: one token replayed, so after the first call both caches answer (the warm path).
    const g = await measureSet(
      {
        shipped: grpcIntrospect('Introspect gRPC, shipped', S.grpcUrl, S.pid, callerS, GRPC, S.opsUrl),
        tuned: grpcIntrospect('Introspect gRPC, tuned', T.grpcUrl, T.pid, callerT, GRPC, T.opsUrl),
        me: grpcGetCurrentUser('GetCurrentUser gRPC, shipped', S, callerS, GRPC),
        healthS: grpcHealth('floor (a) Health/Check, shipped process', S, GRPC),
        healthT: grpcHealth('floor (a) Health/Check, tuned process', T, GRPC),
        floorB: floor.grpc,
      },
      SLICES,
      checks,
      log,
    );
    // Connect JSON over HTTP/1.1, on the shipped process only.
    const c = await measureSet(
      {
        introspect: connectIntrospect('Introspect Connect JSON, shipped', S.httpUrl, S.pid, callerS, CONNECT, S.opsUrl),
        me: connectGetCurrentUser('GetCurrentUser Connect JSON, shipped', S, callerS, CONNECT),
        floorC: floor.connect,
      },
      SLICES,
      checks,
      log,
    );

    const gl = shapeLabel(GRPC);
    const cl = shapeLabel(CONNECT);
    rows.push(
      vs(`Introspect gRPC, SHIPPED config (LOG_LEVEL default ${defaults.LOG_LEVEL}; one token; ${gl})`, g.shipped, 'floor (b): bare grpc-js, prebuilt response, own process', g.floorB),
      vs(`Introspect gRPC, SHIPPED config (LOG_LEVEL default ${defaults.LOG_LEVEL}; one token; ${gl})`, g.shipped, 'floor (a): grpc.health.v1 Check, same grpc-js server', g.healthS),
      vs(`Introspect gRPC, TUNED (${kv(TUNED)}; one token; ${gl})`, g.tuned, 'floor (b): bare grpc-js, prebuilt response, own process', g.floorB),
      vs(`Introspect gRPC, TUNED (${kv(TUNED)}; one token; ${gl})`, g.tuned, 'floor (a): grpc.health.v1 Check, same grpc-js server', g.healthT),
      // What a server doing no work at all reaches against floor (a): Introspect's request (a
      // token in the body, a bearer header) and answer cost grpc-js and the load generator more
      // than Health/Check's few bytes, so this is the most any Introspect can show against (a).
      vs(`Ceiling against floor (a): floor (b), a bare grpc-js server answering Introspect with a prebuilt response (${gl})`, g.floorB, 'floor (a): grpc.health.v1 Check, shipped process', g.healthS),
      vs(`Introspect Connect JSON HTTP/1.1, SHIPPED config (one token; ${cl})`, c.introspect, 'floor (c): bare connect-node, prebuilt response, own process', c.floorC),
      vs(`GetCurrentUser gRPC, SHIPPED config (${gl})`, g.me, 'Introspect gRPC, shipped, same run', g.shipped),
      vs(`GetCurrentUser Connect JSON HTTP/1.1, SHIPPED config (${cl})`, c.me, 'Introspect Connect JSON, shipped, same run', c.introspect),
    );

    // Many users: 10,000 distinct users' tokens in rotation (cold, then warm against floor b), and
    // RSS after 100,000 distinct tokens; users and tokens are made directly (bench/lib/distinct-tokens.ts).
    if (shipped.backends.databaseUrl) {
      rows.push(
        ...(await distinctTokenRows(
          {
            svc: S,
            databaseUrl: shipped.backends.databaseUrl,
            secretKeyBase64: common.SECRET_ENCRYPTION_KEY,
            introspectionSecret,
            claims: { issuer: defaults.JWT_ISSUER, audience: defaults.JWT_AUDIENCE, ttlSeconds: defaults.ACCESS_TOKEN_TTL_SECONDS },
            floorGrpcUrl: floors.grpc.baseUrl,
            floorPid: floors.grpc.pid,
            tag,
            caps: CACHE_CAPS,
          },
          DISTINCT,
          checks,
          log,
        )),
      );
    } else log('distinct-token rows skipped: the embedded database is not reachable from the bench');

    // The cold path: a third process with both caches off, on a database of its own so that
    // PostgreSQL's counters for its users table count this process's reads and nothing else.
    cold = { backends: await prepareBackends(log) };
    cold.service = await startService(cold.backends, { ...common, ...CACHES_OFF });
    log(`caches-off identity pid ${cold.service.pid} (${kv(CACHES_OFF)})`);
    const callerC = await signIn(cold.service, `bench-${tag}-cold@example.test`, password, introspectionSecret);
    const off = await measureSet(
      {
        off: grpcIntrospect('caches off: Introspect gRPC', cold.service.grpcUrl, cold.service.pid, callerC, GRPC, cold.service.opsUrl),
        floorB: floor.grpc,
      },
      SLICES,
      checks,
      log,
    );
    const coldCalls = await introspectCalls(cold.service);
    const coldReads = await stopStarted(cold, 'caches off');
    const readsNote =
      coldReads === undefined
        ? 'user-row reads not counted (embedded database)'
        : `PostgreSQL counted ${coldReads} users-table reads for ${coldCalls} Introspect calls (incl. the few of Register/Login), one per ${(coldCalls / Math.max(1, coldReads)).toFixed(0)} calls: with one token in flight on every stream, concurrent lookups of the same user share one query`;
    rows.push({
      ...vs(`Introspect gRPC, caches off (shipped config with ${kv(CACHES_OFF)}; one token; ${gl})`, off.off, 'floor (b): bare grpc-js, same run', off.floorB),
      note: `informational; ${readsNote}; req/s per slice ${spread(off.off)} vs floor ${spread(off.floorB)}`,
    });
    await stopFloors(floors);

    // SDK (src/sdk): a no-op handler protected by it vs the same handler unprotected (bench/sdk.ts).
    rows.push(...(await sdkRows({ latchGrpcUrl: S.grpcUrl, introspectionSecret }, checks, log)));

    // Login vs bare argon2.verify at the same concurrency (tuned process); collects refresh tokens.
    const refreshTokens: string[] = [first.result.value.refreshToken];
    const loadClient = h2GrpcAuth(T.grpcUrl);
    const argon2 = { memoryKiB: defaults.ARGON2_MEMORY_KIB, timeCost: defaults.ARGON2_TIME_COST, parallelism: defaults.ARGON2_PARALLELISM };
    for (const level of LOGIN_LEVELS) {
      const login = async (w: number) => {
        const res = await loadClient.login(emails[w % emails.length]!, password);
        if (res.result.case !== 'session') throw new Error(`login answered ${res.result.case}`);
        refreshTokens.push(res.result.value.refreshToken);
        return true;
      };
      await closedLoop(level, 2000, login); // warm-up
      let failed = 0;
      let firstError: string | undefined;
      let loginCpu = '';
      let loginCpuMs: number | undefined;
      let loginMainMs: number | undefined;
      let rawCpuMs: number | undefined;
      const m = await interleave(LOGIN.rounds, ['raw', 'login'] as const, async (name) => {
        if (name === 'raw') {
          const raw = await runRawVerifies(argon2, level, LOGIN.sliceSeconds * 1000, threadpool);
          rawCpuMs = raw.cpuMsPerVerify;
          return { count: raw.verifies, seconds: raw.seconds, samplesMs: raw.samplesMs };
        }
        const cpu0 = await cpuSeconds(T.pid);
        const mark = await cpuMark(T.pid);
        const r = await closedLoop(level, LOGIN.sliceSeconds * 1000, login);
        const cpu1 = await cpuSeconds(T.pid);
        ({ text: loginCpu, totalMs: loginCpuMs, serviceMainMs: loginMainMs } = await cpuShares(mark, T.pid, r.ok, 'identity'));
        failed += r.failed;
        firstError ??= r.firstError;
        return { count: r.ok, seconds: r.seconds, samplesMs: r.samplesMs, cpuSeconds: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 };
      });
      const ok = check(`Login ×${level}: every call returned a session`, failed === 0 && m.login.count > 0, `${m.login.count} sessions, ${failed} failed${firstError ? ` (${firstError})` : ''}`);
      rows.push({
        name: `Login, ${level} in flight (tuned process; node:http2 gRPC client)`,
        rps: m.login.rps,
        latency: m.login.latency,
        serverCores: m.login.cores,
        baseline: { name: `argon2.verify ×${level}, own process`, rps: m.raw.rps, latency: m.raw.latency },
        ratio: ok ? m.login.rps / m.raw.rps : undefined,
        target: TARGETS.login,
        note:
          `per slice ${spread(m.login)} vs argon2 ${spread(m.raw)}; last Login slice: ${loginCpu}; last argon2 slice: ${rawCpuMs?.toFixed(2) ?? '?'} ms CPU per verify` +
          // Both sides keep the 2 cores busy, so rates go as the inverse of the CPU each call takes.
          (rawCpuMs !== undefined && loginCpuMs !== undefined ? `; CPU-bound ceiling of the ratio: ${rawCpuMs.toFixed(2)} / ${loginCpuMs.toFixed(2)} = ${(rawCpuMs / loginCpuMs).toFixed(2)}` : '') +
          // What the ratio could reach if the service's own JavaScript (its event-loop thread: the
          // RPC, the queries, the rate limits, the token signing) cost nothing: what is left is
          // Argon2 in the pool, the runtime's other threads, PostgreSQL and the client.
          (rawCpuMs !== undefined && loginCpuMs !== undefined && loginMainMs !== undefined
            ? `; ceiling with the event-loop thread free: ${rawCpuMs.toFixed(2)} / ${(loginCpuMs - loginMainMs).toFixed(2)} = ${(rawCpuMs / (loginCpuMs - loginMainMs)).toFixed(2)}`
            : ''),
      });
    }

    // Refresh: every token is presented once; each answer's successor goes to the back of the queue.
    const queue = refreshTokens.slice();
    const rotate = async () => {
      const token = queue.shift();
      if (token === undefined) return false;
      const res = await loadClient.refresh(token);
      if (!res.session?.refreshToken) throw new Error('refresh returned no session');
      queue.push(res.session.refreshToken);
      return true;
    };
    // Warm-up, as for Login: the first rotations of each pooled connection prepare its statement.
    const warm = await closedLoop(REFRESH.concurrency, REFRESH.warmupSeconds * 1000, rotate);
    const before = await rpcCounts(T.opsUrl);
    const cpu0 = await cpuSeconds(T.pid);
    const refreshMark = await cpuMark(T.pid);
    const rr = await closedLoop(REFRESH.concurrency, REFRESH.seconds * 1000, rotate).finally(() => loadClient.close());
    const cpu1 = await cpuSeconds(T.pid);
    const refreshCpu = await cpuPerCall(refreshMark, T.pid, rr.ok, 'identity');
    const d = delta(before, await rpcCounts(T.opsUrl), 'identity.v1.AuthService/Refresh');
    check(
      'Refresh: every call rotated its token',
      warm.failed === 0 && rr.failed === 0 && rr.ok > 0 && d.ok === rr.ok && Object.keys(d.other).length === 0,
      `${rr.ok} rotations over ${refreshTokens.length} families (after ${warm.ok} in a ${REFRESH.warmupSeconds} s warm-up), ${warm.failed + rr.failed} failed${(warm.firstError ?? rr.firstError) ? ` (${warm.firstError ?? rr.firstError})` : ''}; server counted ${d.ok} ok ${JSON.stringify(d.other)}`,
    );
    rows.push({
      name: `Refresh, ${REFRESH.concurrency} in flight (tuned process; node:http2 gRPC client)`,
      rps: rr.ok / rr.seconds,
      latency: rr.latency,
      serverCores: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / rr.seconds,
      note: `${refreshTokens.length} sessions from the Login runs, each rotation's successor replayed later; ${REFRESH.warmupSeconds} s warm-up, then ${REFRESH.seconds} s; DATABASE_POOL_MAX=${defaults.DATABASE_POOL_MAX}; ${refreshCpu}`,
    });
  } finally {
    if (floors) await stopFloors(floors).catch((e) => log(`floors not stopped cleanly: ${(e as Error).message}`));
    for (const [s, label] of [[cold, 'caches off'], [tuned, 'tuned'], [shipped, 'shipped']] as const) {
      if (s) await stopStarted(s, label).catch((e) => log(`${label} service not stopped cleanly: ${(e as Error).message}`));
    }
  }

  // The mailer against nodemailer, once the identity processes are gone (alone: npx tsx bench/mailer.ts).
  const mailer = shipped.backends.nats
    ? await runMailerBench({ natsUrl: shipped.backends.nats.url, log }).catch((e: unknown) => {
        check('mailer: bench ran', false, (e as Error).message);
        return undefined;
      })
    : undefined;
  if (mailer) {
    rows.push(...mailer.rows);
    check('mailer: every pre-published alert mailed exactly once, as every direct send', mailer.ok, mailer.rows[0]?.note ?? '');
  }

  const report: Report = {
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      'SHIPPED rows': `identity as its own process (node --import tsx src/identity/main.ts, what npm start execs), default configuration: LOG_LEVEL unset (default ${defaults.LOG_LEVEL}), stdout/stderr drained by the bench as a log collector would; NODE_ENV=production`,
      'TUNED rows': `a second identity process, same code and backends (own database/stream/key prefix), with ${kv(TUNED)}; for the Login and Refresh rows it also has ${kv(loginTuning)}, which Introspect never touches`,
      'caches-off row': `a third identity process, shipped config with ${kv(CACHES_OFF)}, started after the Introspect sets and stopped before Login`,
      'floor (a)': 'grpc.health.v1 Health/Check on the same grpc-js server as the row (the service registers grpc-health-check): grpc-js work only',
      'floor (b)': `bench/floors/introspect-grpc-floor.ts: bare grpc-js server, own process, answers Introspect with the shipped service's IntrospectResponse encoded once with toBinary; hand-written service definition with pass-through serializers; same h2load settings as the gRPC rows`,
      'floor (c)': 'bench/floors/introspect-connect-floor.ts: bare connect-node server (connectNodeAdapter on node:http, HTTP/1.1), own process, answers Introspect with the same response message; same load generator and settings as the Connect rows. The service answers these Connect POSTs (Introspect, GetCurrentUser) through src/identity/rpc/transports/connect-unary.ts: connect\'s protocol rules and serializers without connect-node\'s router',
      backends: `PostgreSQL ${shipped.backends.database} (a fresh database per process), Redis ${shipped.backends.redisUrl ? 'local' : 'none'}, NATS ${shipped.backends.nats ? 'local JetStream (fresh stream per process)' : 'none'}`,
      'load generators': `gRPC rows: ${shapeLabel(GRPC)} (HTTP/2, 16 connections × 10 streams); Connect rows: ${shapeLabel(CONNECT)} (Connect JSON, POST application/json, HTTP/1.1, 64 connections, no pipelining). Every set: ${SLICES.warmupRequests} warm-up requests per figure, then ${SLICES.rounds} rounds of ${SLICES.sliceSeconds} s slices, figures interleaved, every other round in reverse order (gRPC set: shipped / tuned / GetCurrentUser / health shipped / health tuned / floor b; Connect set: Introspect / GetCurrentUser / floor c; caches-off set: Introspect / floor b). Login and raw argon2 alternate in ${LOGIN.rounds} rounds of ${LOGIN.sliceSeconds} s (raw, Login, Login, raw) after a 2 s warm-up; Login and Refresh via a minimal gRPC client over node:http2 in the bench process (bench/lib/h2-grpc-auth.ts: protobuf-es encoding, grpc-status from the trailers; it costs the shared cores less per call than a @grpc/grpc-js or connect-node client). The Introspect rows named 'one token' replay one user's token; the distinct-users rows are below`,
      'resources': 'server RSS: process_resident_memory_bytes from the service\'s /metrics at the end of each slice (floors: VmRSS from /proc), largest; event-loop delay: prom-client\'s monitorEventLoopDelay gauges on /metrics, scraped right before and right after each slice (each scrape resets the histogram), worst slice\'s p99 and largest max; server cores: /proc CPU time over the slices',
      'background load (1-min load average, start → end)': `${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} CPUs; the machine is shared, so absolute figures are noisy and only same-run ratios mean much; the load generator (h2load, one thread) shares the 2 CPUs with the server`,
      'distinct-users rows': `${DISTINCT.users} users inserted into the shipped process's database (a password hash that matches no password) and one access token each, signed by the bench with the service's current signing key (read from its database, opened with the SECRET_ENCRYPTION_KEY the bench gave it), same header and claims as issued tokens; h2load replays one body, so these rows use bench/lib/distinct-tokens.ts, a node:http2 client with the gRPC rows' shape (${DISTINCT.clients} connections × ${DISTINCT.streams} streams) and prebuilt frames, and floor (b) is driven by that same client for the ratio. COLD: the first pass, each token once. WARM: ${DISTINCT.rounds} rounds of ${DISTINCT.sliceSeconds} s continuing the rotation, interleaved with the floor (every other round floor first). Memory: ${DISTINCT.memoryTokensPerUser} further tokens for each of ${DISTINCT.memoryUsers} of those users (own jti and sid; ${DISTINCT.memoryUsers * DISTINCT.memoryTokensPerUser} in all), each presented once, RSS from /metrics before and after`,
      argon2: `m=${defaults.ARGON2_MEMORY_KIB} KiB, t=${defaults.ARGON2_TIME_COST}, p=${defaults.ARGON2_PARALLELISM}; HASH_CONCURRENCY=${maxLevel}, UV_THREADPOOL_SIZE=${threadpool} for both the tuned service and the baseline`,
      ...mailer?.setup,
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

async function signIn(svc: ServiceProcess, email: string, password: string, introspectionSecret: string): Promise<Caller> {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: svc.grpcUrl }));
  await auth.register({ email, password });
  const res = await auth.login({ email, password });
  if (res.result.case !== 'session') throw new Error(`login answered ${res.result.case}`);
  return { accessToken: res.result.value.accessToken, userId: res.result.value.user!.id, introspectionSecret };
}

async function stopFloors(f: { grpc: FloorProcess; connect: FloorProcess }): Promise<void> {
  await Promise.all([f.grpc.stop(), f.connect.stop()]);
}

/**
 * Stops a service (its pool closes, so PostgreSQL publishes the counters of its connections),
 * checks its log for errors, reads how often it scanned the users table, then drops its database,
 * stream and keys. A second call does nothing.
 */
async function stopStarted(s: Started, label: string): Promise<number | undefined> {
  if (s.stopped) return undefined;
  s.stopped = true;
  try {
    if (!s.service) return undefined;
    await s.service.stop();
    const errors = s.service.errorLines();
    check(`${label}: no error logged by the service`, errors.length === 0, errors.length === 0 ? 'none' : errors.slice(0, 3).join(' | '));
    if (!s.backends.databaseUrl) return undefined;
    return await tableScans(s.backends.databaseUrl, 'users');
  } finally {
    await s.backends.cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
