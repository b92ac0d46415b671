/**
 * SDK overhead: a no-op Connect handler protected by src/sdk (warm answer cache, one token) beside
 * the same handler unprotected, each in its own process, same load generator, interleaved slices
 * of the same run; plus the cold path (a token the SDK has not seen on every request) for information.
 * Used by bench/run.ts; runs alone with `npx tsx bench/sdk.ts` (starts its own Latch).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AuthService } from '../src/gen/identity/v1/auth_pb.js';
import { Checks } from './lib/checks.js';
import { connectJsonRequest, probeJson } from './lib/h2load.js';
import { startChildServer, type ChildServer } from './lib/child-server.js';
import { measureSet, vsRow, type LoadShape, type LoadTarget, type Measured } from './lib/load-set.js';
import { closedLoop } from './lib/stats.js';
import { verdict, type Row } from './lib/report.js';
import { prepareBackends, startService } from './lib/target.js';

export const SDK_TARGET = 0.9;
const SHAPE: LoadShape = { clients: 32, streamsPerClient: 1, h1: true };
const SLICES = { warmupRequests: 5000, rounds: 4, sliceSeconds: 4 };
const METHOD = '/downstream.v1.GreeterService/Hello';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface SdkBenchInput {
  /** A running Latch: its gRPC address and an introspection credential. */
  latchGrpcUrl: string;
  introspectionSecret: string;
}

/** Cold-path requests: each with a token the SDK has never seen (one Refresh each, minted before the load). */
const COLD = { tokens: 1500, concurrency: 8 };

type NoopServer = ChildServer;

function startNoop(mode: 'open' | 'warm', input: SdkBenchInput): Promise<NoopServer> {
  return startChildServer(`sdk ${mode} server`, path.join(root, 'bench/sdk-noop-server.ts'), [], {
    SDK_MODE: mode,
    LATCH_GRPC_URL: input.latchGrpcUrl,
    LATCH_INTROSPECTION_SECRET: input.introspectionSecret,
  }, root);
}

function target(label: string, s: NoopServer, token: string | undefined): LoadTarget {
  const request = connectJsonRequest(METHOD, {}, token ? { authorization: `Bearer ${token}` } : {});
  return {
    label,
    baseUrl: s.baseUrl,
    request,
    shape: SHAPE,
    pid: s.pid,
    async probe() {
      const r = await probeJson(s.baseUrl, request);
      return { ok: r.status === 200, detail: `HTTP ${r.status}` };
    },
  };
}

/** A user signed in on Latch, and `n` further access tokens of the session (Refresh chain). */
async function tokens(latchGrpcUrl: string, n: number): Promise<{ accessToken: string; fresh: string[] }> {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: latchGrpcUrl }));
  const email = `bench-sdk-${randomBytes(4).toString('hex')}@example.test`;
  const password = `bench-${randomBytes(9).toString('base64url')}-harbour`;
  await auth.register({ email, password });
  const res = await auth.login({ email, password });
  if (res.result.case !== 'session') throw new Error('login did not return a session');
  let refreshToken = res.result.value.refreshToken;
  const fresh: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await auth.refresh({ refreshToken });
    fresh.push(r.session!.accessToken);
    refreshToken = r.session!.refreshToken;
  }
  return { accessToken: res.result.value.accessToken, fresh };
}

/** Closed loop over node's fetch, one request per token (or the same request `count` times unprotected). */
async function coldLoop(baseUrl: string, tokenList: (string | undefined)[]): Promise<Measured> {
  let next = 0;
  const r = await closedLoop(COLD.concurrency, 120_000, async () => {
    const i = next++;
    if (i >= tokenList.length) return false;
    const t = tokenList[i];
    const res = await fetch(baseUrl + METHOD, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', ...(t ? { authorization: `Bearer ${t}` } : {}) },
      body: '{}',
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    return true;
  });
  return { rps: r.ok / r.seconds, count: r.ok, seconds: r.seconds, latency: r.latency, sliceRps: [r.ok / r.seconds], correct: r.failed === 0 };
}

/** The SDK rows: warm (with the ≥ 0.9 target) and cold, each against the unprotected handler of the same run. */
export async function sdkRows(input: SdkBenchInput, checks: Checks, log: (msg: string) => void): Promise<Row[]> {
  const servers: NoopServer[] = [];
  try {
    const { accessToken, fresh } = await tokens(input.latchGrpcUrl, COLD.tokens);
    const [open, warm] = [await startNoop('open', input), await startNoop('warm', input)];
    servers.push(open, warm);
    log(`sdk: unprotected pid ${open.pid}, protected pid ${warm.pid}`);
    const refused = await probeJson(warm.baseUrl, connectJsonRequest(METHOD, {}));
    checks.check('sdk: the protected handler refuses a call without a token', refused.status === 401, `HTTP ${refused.status}`);
    const w = await measureSet(
      { open: target('no-op handler, unprotected', open, undefined), warm: target('no-op handler, SDK-protected (warm cache)', warm, accessToken) },
      SLICES,
      checks,
      log,
    );
    // Cold: every request carries a token the protected process has not seen, so each one is an Introspect.
    const coldOpen = await coldLoop(open.baseUrl, fresh.map(() => undefined));
    const cold = await coldLoop(warm.baseUrl, fresh);
    checks.check('sdk: cold path, every request with a new token answered 200', cold.correct && coldOpen.correct, `${cold.count} + ${coldOpen.count} requests`);
    const shape = `Connect JSON HTTP/1.1, h2load --h1 -c ${SHAPE.clients}`;
    return [
      vsRow(`SDK: no-op handler protected, warm cache (one token; ${shape})`, w.warm, 'the same handler unprotected, own process, same run', w.open, SDK_TARGET),
      {
        ...vsRow(`SDK: no-op handler protected, cold (a new token on every request: one Introspect each; ${COLD.concurrency} in flight, node fetch)`, cold, 'the same handler unprotected, same client, same run', coldOpen),
        note: `informational (cold path): ${fresh.length} requests each way`,
      },
    ];
  } finally {
    for (const s of servers) await s.stop().catch((e) => log(`sdk server not stopped cleanly: ${(e as Error).message}`));
  }
}

async function main(): Promise<number> {
  const log = (msg: string) => process.stdout.write(`[bench:sdk] ${msg}\n`);
  const checks = new Checks(log);
  const backends = await prepareBackends(log);
  const introspectionSecret = randomBytes(32).toString('base64url');
  const latch = await startService(backends, { SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64'), INTROSPECTION_CLIENTS: `bench:${introspectionSecret}`, LOG_LEVEL: 'warn' });
  try {
    const rows = await sdkRows({ latchGrpcUrl: latch.grpcUrl, introspectionSecret }, checks, log);
    for (const r of rows) {
      log(`${r.name}: ${r.rps.toFixed(0)} req/s (p50 ${r.latency?.p50Ms.toFixed(2)} ms) vs ${r.baseline!.rps.toFixed(0)} req/s (p50 ${r.baseline!.latency?.p50Ms.toFixed(2)} ms): ratio ${r.ratio?.toFixed(2) ?? '—'} ${verdict(r)}`);
    }
  } finally {
    await latch.stop();
    await backends.cleanup();
  }
  return checks.allOk ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`sdk bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
