import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AuthService } from '../gen/identity/v1/auth_pb.js';
import {
  GetJwksRequestSchema,
  GetJwksResponseSchema,
  IntrospectRequestSchema,
  IntrospectResponseSchema,
  TokenIntrospectionService,
} from '../gen/identity/v1/introspection_pb.js';
import { configSchema } from '../src/shared/config.js';
import { runRawVerifies } from './lib/argon2-raw.js';
import { grpcRequest, probe, runH2load, type GrpcRequest } from './lib/h2load.js';
import { interleave, type Pooled, type Slice } from './lib/measure.js';
import { machine, toMarkdown, verdict, writeReport, type Report, type Row } from './lib/report.js';
import { cpuSeconds, delta, rpcCounts } from './lib/server-stats.js';
import { closedLoop } from './lib/stats.js';
import { prepareBackends, startService, type ServiceProcess } from './lib/target.js';

/**
 * `npm run bench`: the identity service in its own process, measured against baselines taken on
 * the same machine in the same run. Exits non-zero when a correctness check fails (a figure from
 * wrong answers is worthless); a missed target is reported, not fatal.
 */

const H2 = { clients: 16, streamsPerClient: 10, warmupRequests: 3000, rounds: 3, sliceSeconds: 4 };
const h2Shape = { clients: H2.clients, streamsPerClient: H2.streamsPerClient };
/** Logins in flight; the service's HASH_CONCURRENCY is set to the largest so it never queues. */
const LOGIN_LEVELS = [4, 8];
const LOGIN = { rounds: 2, sliceSeconds: 5 };
const REFRESH = { concurrency: 16, seconds: 10 };
const TARGETS = { introspect: 0.8, login: 0.9 };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const defaults = configSchema.parse({});
const log = (msg: string) => process.stdout.write(`[bench] ${msg}\n`);

const checks: Report['checks'] = [];
function check(name: string, ok: boolean, detail: string): boolean {
  checks.push({ name, ok, detail });
  log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  return ok;
}

async function main(): Promise<number> {
  process.chdir(root);
  const started = Date.now();
  const loadAtStart = os.loadavg()[0]!;
  if (loadAtStart > os.cpus().length / 2) log(`warning: load average ${loadAtStart.toFixed(2)} before start; figures will be noisy`);
  const backends = await prepareBackends(log);
  const introspectionSecret = randomBytes(32).toString('base64url');
  const maxLevel = Math.max(...LOGIN_LEVELS);
  const threadpool = maxLevel + 4;
  let service: ServiceProcess | undefined;
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
    const transport = createGrpcTransport({ baseUrl: svc.grpcUrl });
    const auth = createClient(AuthService, transport);
    const introspection = createClient(TokenIntrospectionService, transport);

    // Users: one per login worker, so the load is not one account's row over and over.
    const password = `bench-${randomBytes(9).toString('base64url')}-harbour`;
    const tag = randomBytes(4).toString('hex');
    const emails = Array.from({ length: maxLevel }, (_, i) => `bench-${tag}-${i}@example.test`);
    for (const email of emails) await auth.register({ email, password });
    const first = await auth.login({ email: emails[0]!, password });
    if (first.result.case !== 'session') throw new Error('login did not return a session');
    const accessToken = first.result.value.accessToken;

    // (a) Introspect vs the no-op GetJwks on the same pipeline, and grpc-js's own health check.
    const introspectReq = grpcRequest(
      '/identity.v1.TokenIntrospectionService/Introspect',
      toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: accessToken, tokenTypeHint: 'access_token' })),
      { authorization: `Bearer ${introspectionSecret}` },
    );
    const jwksReq = grpcRequest('/identity.v1.TokenIntrospectionService/GetJwks', toBinary(GetJwksRequestSchema, create(GetJwksRequestSchema)));
    const healthReq = grpcRequest('/grpc.health.v1.Health/Check', new Uint8Array(0));

    const viaClient = await introspection.introspect({ token: accessToken }, { headers: { authorization: `Bearer ${introspectionSecret}` } });
    const okIntrospect = check('Introspect (Connect gRPC client)', viaClient.active && viaClient.sub !== '', `active=${viaClient.active} sub=${viaClient.sub}`);
    const jwksViaClient = await introspection.getJwks({});
    const okJwks = check('GetJwks (Connect gRPC client)', (JSON.parse(jwksViaClient.keysJson) as { keys: unknown[] }).keys.length > 0, 'keys present');

    const pIntro = await probe(svc.grpcUrl, introspectReq);
    const introBody = pIntro.grpcStatus === '0' ? fromBinary(IntrospectResponseSchema, pIntro.message) : undefined;
    const okIntroProbe = check('Introspect (the exact h2load request)', introBody?.active === true, `grpc-status ${pIntro.grpcStatus}, active=${introBody?.active}`);
    const pJwks = await probe(svc.grpcUrl, jwksReq);
    const okJwksProbe = check(
      'GetJwks (the exact h2load request)',
      pJwks.grpcStatus === '0' && fromBinary(GetJwksResponseSchema, pJwks.message).keysJson.length > 0,
      `grpc-status ${pJwks.grpcStatus}`,
    );
    const pHealth = await probe(svc.grpcUrl, healthReq);
    // HealthCheckResponse { status: SERVING (1) } is the two bytes 08 01.
    const okHealth = check('Health/Check (the exact h2load request)', pHealth.grpcStatus === '0' && pHealth.message.equals(Buffer.from([8, 1])), `grpc-status ${pHealth.grpcStatus}`);

    // Interleaved so that background load drifting during the run hits subject and baseline alike.
    const h2Requests = { jwks: jwksReq, introspect: introspectReq, health: healthReq };
    const h2Methods = { jwks: 'TokenIntrospectionService/GetJwks', introspect: 'TokenIntrospectionService/Introspect', health: undefined };
    const empty = (m?: string): Tally => ({ responses: 0, failedStreams: 0, ...(m ? { serverOk: 0, serverOther: 0 } : {}) });
    const tallies = { jwks: empty(h2Methods.jwks), introspect: empty(h2Methods.introspect), health: empty() };
    for (const req of Object.values(h2Requests)) await runH2load(svc.grpcUrl, req, { ...h2Shape, requests: H2.warmupRequests });
    const h2 = await interleave(H2.rounds, ['jwks', 'introspect', 'health'] as const, async (name) => {
      const r = await loadRun(svc, h2Methods[name], h2Requests[name]);
      tallies[name] = addTally(tallies[name], r.tally);
      return r.slice;
    });
    const h2Correct = {
      jwks: checkTally('GetJwks', tallies.jwks),
      introspect: checkTally('Introspect', tallies.introspect),
      health: checkTally('Health/Check', tallies.health),
    };
    const introCorrect = okIntrospect && okIntroProbe && okJwks && okJwksProbe && h2Correct.introspect && h2Correct.jwks;
    rows.push(
      {
        name: `Introspect (h2load -c ${H2.clients} -m ${H2.streamsPerClient})`,
        rps: h2.introspect.rps,
        latency: h2.introspect.latency,
        serverCores: h2.introspect.cores,
        baseline: { name: 'GetJwks no-op, same pipeline', rps: h2.jwks.rps, latency: h2.jwks.latency },
        ratio: introCorrect ? h2.introspect.rps / h2.jwks.rps : undefined,
        target: TARGETS.introspect,
        note: `req/s per slice ${spread(h2.introspect)} vs GetJwks ${spread(h2.jwks)}`,
      },
      {
        name: 'grpc.health.v1 Check (grpc-js floor)',
        rps: h2.health.rps,
        latency: h2.health.latency,
        serverCores: h2.health.cores,
        note: okHealth && h2Correct.health ? `GetJwks reaches ${((h2.jwks.rps / h2.health.rps) * 100).toFixed(0)}% of the bare grpc-js floor` : 'health check failed',
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
    const before = await rpcCounts(svc.httpUrl);
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
    const d = delta(before, await rpcCounts(svc.httpUrl), 'identity.v1.AuthService/Refresh');
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
    const output = service?.output() ?? '';
    await service?.stop();
    await backends.cleanup();
    const serverErrors = output.split('\n').filter((l) => /"level":(50|60)/.test(l));
    if (service) check('no error logged by the service', serverErrors.length === 0, serverErrors.length === 0 ? 'none' : serverErrors.slice(0, 3).join(' | '));
  }

  const report: Report = {
    date: new Date().toISOString(),
    machine: machine(),
    setup: {
      'system under test': 'identity as its own process (node --import tsx src/identity/main.ts), LOG_LEVEL=warn, default config otherwise',
      backends: `PostgreSQL ${backends.database} (fresh database), Redis ${backends.redisUrl ? 'local' : 'none'}, NATS ${backends.nats ? 'local JetStream (fresh stream)' : 'none'}`,
      'load generators': `h2load ${H2.clients} connections × ${H2.streamsPerClient} streams, ${H2.warmupRequests} warm-up requests each, then ${H2.rounds} rounds of ${H2.sliceSeconds} s slices alternating GetJwks / Introspect / Health; Login and Raw argon2 alternate in ${LOGIN.rounds} rounds of ${LOGIN.sliceSeconds} s after a 2 s warm-up; Login and Refresh via a Connect gRPC client in the bench process`,
      'background load (1-min load average, start → end)': `${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} CPUs`,
      argon2: `m=${defaults.ARGON2_MEMORY_KIB} KiB, t=${defaults.ARGON2_TIME_COST}, p=${defaults.ARGON2_PARALLELISM}; HASH_CONCURRENCY=${Math.max(...LOGIN_LEVELS)}, UV_THREADPOOL_SIZE=${threadpool} for both service and baseline`,
      'total run time': `${((Date.now() - started) / 1000).toFixed(0)} s`,
    },
    rows,
    checks,
  };
  const files = await writeReport(path.join(root, 'bench/results'), report);
  process.stdout.write(`\n${toMarkdown(report)}\n`);
  for (const r of rows.filter((x) => x.target !== undefined)) log(`${r.name}: ratio ${r.ratio?.toFixed(2) ?? '—'} → ${verdict(r)}`);
  log(`written ${path.relative(root, files.md)} and ${path.relative(root, files.json)}`);
  return checks.every((c) => c.ok) ? 0 : 1;

  /** One timed h2load slice, with the server's own count of answers by gRPC code. */
  async function loadRun(svc: ServiceProcess, method: string | undefined, req: GrpcRequest): Promise<{ slice: Slice; tally: Tally }> {
    const before = method ? await rpcCounts(svc.httpUrl) : undefined;
    const cpu0 = await cpuSeconds(svc.pid);
    const result = await runH2load(svc.grpcUrl, req, { ...h2Shape, durationSeconds: H2.sliceSeconds });
    const cpu1 = await cpuSeconds(svc.pid);
    log(`${method ?? req.path}: ${result.rps.toFixed(0)} req/s, p50 ${result.latency.p50Ms.toFixed(2)} ms, p99 ${result.latency.p99Ms.toFixed(2)} ms`);
    const d = method && before ? delta(before, await rpcCounts(svc.httpUrl), `identity.v1.${method}`) : undefined;
    const cpu = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0;
    return {
      slice: { count: result.succeeded, seconds: result.seconds, samplesMs: result.samplesMs, cpuSeconds: cpu },
      tally: { responses: result.succeeded, failedStreams: result.failed, serverOk: d?.ok, serverOther: d ? Object.values(d.other).reduce((a, b) => a + b, 0) : undefined },
    };
  }
}

interface Tally {
  responses: number;
  failedStreams: number;
  /** Calls the server counted as OK / as anything else (undefined: not a pipeline method). */
  serverOk?: number;
  serverOther?: number;
}

function addTally(a: Tally, b: Tally): Tally {
  const sum = (x?: number, y?: number) => (x === undefined || y === undefined ? undefined : x + y);
  return { responses: a.responses + b.responses, failedStreams: a.failedStreams + b.failedStreams, serverOk: sum(a.serverOk, b.serverOk), serverOther: sum(a.serverOther, b.serverOther) };
}

/**
 * h2load's "succeeded" means HTTP 200 (the gRPC status is in the trailers), so the server's own
 * counters must show every call OK; a few more than h2load counted were cut off at the deadline.
 */
function checkTally(label: string, t: Tally): boolean {
  const streamsOk = t.failedStreams === 0 && t.responses > 0;
  const serverOk = t.serverOk === undefined || (t.serverOther === 0 && t.serverOk >= t.responses);
  const server = t.serverOk === undefined ? '' : `; server counted ${t.serverOk} OK and ${t.serverOther} other codes`;
  return check(`${label} under load`, streamsOk && serverOk, `${t.responses} responses, ${t.failedStreams} failed streams${server}`);
}

function spread(p: Pooled): string {
  return p.sliceRps.map((x) => x.toFixed(x < 100 ? 1 : 0)).join(', ');
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
