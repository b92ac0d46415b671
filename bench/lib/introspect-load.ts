import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import {
  GetJwksRequestSchema,
  GetJwksResponseSchema,
  IntrospectRequestSchema,
  IntrospectResponseSchema,
  TokenIntrospectionService,
} from '../../src/gen/identity/v1/introspection_pb.js';
import type { Checks } from './checks.js';
import { grpcRequest, probe, runH2load, type GrpcRequest } from './h2load.js';
import { interleave, type Pooled, type Slice } from './measure.js';
import { cpuSeconds, delta, rpcCounts } from './server-stats.js';
import type { ServiceProcess } from './target.js';

/**
 * Introspect against the no-op GetJwks on the same pipeline of one service process (and, when
 * asked, grpc-js's own health check as the floor), all replayed by h2load. Every figure comes
 * with its correctness checks: the Connect client's answer, the exact bytes h2load sends, and
 * the server's own count of answers by gRPC code.
 */

export interface H2Settings {
  clients: number;
  streamsPerClient: number;
  warmupRequests: number;
  rounds: number;
  sliceSeconds: number;
}

export interface IntrospectionTarget {
  svc: ServiceProcess;
  accessToken: string;
  introspectionSecret: string;
  /** Prefixes the check names when several services are measured in one run. */
  label?: string;
  withHealth: boolean;
}

export interface IntrospectionFigures {
  introspect: Pooled;
  jwks: Pooled;
  health?: Pooled;
  /** Every Introspect and GetJwks check passed; a ratio is only computed when true. */
  correct: boolean;
  healthCorrect?: boolean;
}

interface Tally {
  responses: number;
  failedStreams: number;
  /** Calls the server counted as OK / as anything else (undefined: not a pipeline method). */
  serverOk?: number;
  serverOther?: number;
}

const METHODS = { jwks: 'TokenIntrospectionService/GetJwks', introspect: 'TokenIntrospectionService/Introspect', health: undefined } as const;

export async function measureIntrospection(t: IntrospectionTarget, h2: H2Settings, checks: Checks, log: (msg: string) => void): Promise<IntrospectionFigures> {
  const { svc } = t;
  const name = (s: string) => (t.label ? `${t.label}: ${s}` : s);
  const bearer = { authorization: `Bearer ${t.introspectionSecret}` };
  const introspection = createClient(TokenIntrospectionService, createGrpcTransport({ baseUrl: svc.grpcUrl }));

  const requests = {
    introspect: grpcRequest(
      '/identity.v1.TokenIntrospectionService/Introspect',
      toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: t.accessToken, tokenTypeHint: 'access_token' })),
      bearer,
    ),
    jwks: grpcRequest('/identity.v1.TokenIntrospectionService/GetJwks', toBinary(GetJwksRequestSchema, create(GetJwksRequestSchema))),
    health: grpcRequest('/grpc.health.v1.Health/Check', new Uint8Array(0)),
  };

  const viaClient = await introspection.introspect({ token: t.accessToken }, { headers: bearer });
  const okIntrospect = checks.check(name('Introspect (Connect gRPC client)'), viaClient.active && viaClient.sub !== '', `active=${viaClient.active} sub=${viaClient.sub}`);
  const jwksViaClient = await introspection.getJwks({});
  const okJwks = checks.check(name('GetJwks (Connect gRPC client)'), (JSON.parse(jwksViaClient.keysJson) as { keys: unknown[] }).keys.length > 0, 'keys present');

  const pIntro = await probe(svc.grpcUrl, requests.introspect);
  const introBody = pIntro.grpcStatus === '0' ? fromBinary(IntrospectResponseSchema, pIntro.message) : undefined;
  const okIntroProbe = checks.check(name('Introspect (the exact h2load request)'), introBody?.active === true, `grpc-status ${pIntro.grpcStatus}, active=${introBody?.active}`);
  const pJwks = await probe(svc.grpcUrl, requests.jwks);
  const okJwksProbe = checks.check(
    name('GetJwks (the exact h2load request)'),
    pJwks.grpcStatus === '0' && fromBinary(GetJwksResponseSchema, pJwks.message).keysJson.length > 0,
    `grpc-status ${pJwks.grpcStatus}`,
  );
  let okHealth = true;
  if (t.withHealth) {
    const pHealth = await probe(svc.grpcUrl, requests.health);
    // HealthCheckResponse { status: SERVING (1) } is the two bytes 08 01.
    okHealth = checks.check(name('Health/Check (the exact h2load request)'), pHealth.grpcStatus === '0' && pHealth.message.equals(Buffer.from([8, 1])), `grpc-status ${pHealth.grpcStatus}`);
  }

  // Interleaved so that background load drifting during the run hits subject and baseline alike.
  const order = t.withHealth ? (['jwks', 'introspect', 'health'] as const) : (['jwks', 'introspect'] as const);
  const empty = (m?: string): Tally => ({ responses: 0, failedStreams: 0, ...(m ? { serverOk: 0, serverOther: 0 } : {}) });
  const tallies: Record<(typeof order)[number], Tally> = { jwks: empty(METHODS.jwks), introspect: empty(METHODS.introspect), health: empty() };
  const shape = { clients: h2.clients, streamsPerClient: h2.streamsPerClient };
  for (const k of order) await runH2load(svc.grpcUrl, requests[k], { ...shape, requests: h2.warmupRequests });
  const pooled = await interleave(h2.rounds, order, async (k) => {
    const r = await loadRun(k);
    tallies[k] = addTally(tallies[k], r.tally);
    return r.slice;
  });
  const loadOk = {
    jwks: checkTally(name('GetJwks under load'), tallies.jwks),
    introspect: checkTally(name('Introspect under load'), tallies.introspect),
    health: t.withHealth ? checkTally(name('Health/Check under load'), tallies.health) : true,
  };
  const p = pooled as Record<string, Pooled>;
  return {
    introspect: p.introspect!,
    jwks: p.jwks!,
    health: p.health,
    correct: okIntrospect && okIntroProbe && okJwks && okJwksProbe && loadOk.introspect && loadOk.jwks,
    healthCorrect: t.withHealth ? okHealth && loadOk.health : undefined,
  };

  /** One timed h2load slice, with the server's own count of answers by gRPC code. */
  async function loadRun(k: keyof typeof requests): Promise<{ slice: Slice; tally: Tally }> {
    const method = METHODS[k];
    const req: GrpcRequest = requests[k];
    const before = method ? await rpcCounts(svc.opsUrl) : undefined;
    const cpu0 = await cpuSeconds(svc.pid);
    const result = await runH2load(svc.grpcUrl, req, { ...shape, durationSeconds: h2.sliceSeconds });
    const cpu1 = await cpuSeconds(svc.pid);
    log(`${t.label ? `${t.label}: ` : ''}${method ?? req.path}: ${result.rps.toFixed(0)} req/s, p50 ${result.latency.p50Ms.toFixed(2)} ms, p99 ${result.latency.p99Ms.toFixed(2)} ms`);
    const d = method && before ? delta(before, await rpcCounts(svc.opsUrl), `identity.v1.${method}`) : undefined;
    const cpu = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0;
    return {
      slice: { count: result.succeeded, seconds: result.seconds, samplesMs: result.samplesMs, cpuSeconds: cpu },
      tally: { responses: result.succeeded, failedStreams: result.failed, serverOk: d?.ok, serverOther: d ? Object.values(d.other).reduce((a, b) => a + b, 0) : undefined },
    };
  }

  /**
   * h2load's "succeeded" means HTTP 200 (the gRPC status is in the trailers), so the server's own
   * counters must show every call OK; a few more than h2load counted were cut off at the deadline.
   */
  function checkTally(label: string, tally: Tally): boolean {
    const streamsOk = tally.failedStreams === 0 && tally.responses > 0;
    const serverOk = tally.serverOk === undefined || (tally.serverOther === 0 && tally.serverOk >= tally.responses);
    const server = tally.serverOk === undefined ? '' : `; server counted ${tally.serverOk} OK and ${tally.serverOther} other codes`;
    return checks.check(label, streamsOk && serverOk, `${tally.responses} responses, ${tally.failedStreams} failed streams${server}`);
  }
}

function addTally(a: Tally, b: Tally): Tally {
  const sum = (x?: number, y?: number) => (x === undefined || y === undefined ? undefined : x + y);
  return { responses: a.responses + b.responses, failedStreams: a.failedStreams + b.failedStreams, serverOk: sum(a.serverOk, b.serverOk), serverOther: sum(a.serverOther, b.serverOther) };
}

/** Introspect calls the server has answered so far, by any code: the denominator for per-call database reads. */
export async function introspectCalls(svc: ServiceProcess): Promise<number> {
  let n = 0;
  for (const [key, v] of await rpcCounts(svc.opsUrl)) if (key.split(' ')[0]!.toLowerCase() === `identity.v1.${METHODS.introspect}`.toLowerCase()) n += v;
  return n;
}
