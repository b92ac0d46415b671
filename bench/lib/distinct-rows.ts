import type { Checks } from './checks.js';
import { introspectFrames, mintAccessTokens, runRotating, seedUsers, type ClaimSettings, type RotatingResult } from './distinct-tokens.js';
import { interleave, spread, type Slice } from './measure.js';
import type { Row } from './report.js';
import { cpuSeconds, scrape } from './server-stats.js';
import type { ServiceProcess } from './target.js';

/**
 * Introspect over gRPC with many distinct users' tokens (bench/lib/distinct-tokens.ts): a cold pass
 * (every token new to the process), warm slices interleaved with floor (b) driven by the same
 * client, and the service's resident set before and after 100,000 distinct tokens.
 */

export interface DistinctSettings {
  users: number;
  /** The memory pass: memoryUsers of those users × memoryTokensPerUser distinct tokens each. */
  memoryUsers: number;
  memoryTokensPerUser: number;
  clients: number;
  streams: number;
  rounds: number;
  sliceSeconds: number;
}

export interface DistinctInput {
  svc: ServiceProcess;
  databaseUrl: string;
  secretKeyBase64: string;
  introspectionSecret: string;
  claims: ClaimSettings;
  floorGrpcUrl: string;
  floorPid: number;
  tag: string;
  caps: string;
}

const mib = (b: number | undefined) => (b === undefined ? undefined : b / 2 ** 20);

export async function distinctTokenRows(i: DistinctInput, s: DistinctSettings, checks: Checks, log: (m: string) => void): Promise<Row[]> {
  const shape = `node:http2 client -c ${s.clients} -m ${s.streams}, tokens in rotation`;
  const userIds = await seedUsers(i.databaseUrl, s.users, i.tag);
  const tokens = await mintAccessTokens(i.databaseUrl, i.secretKeyBase64, userIds, 1, i.claims);
  const req = introspectFrames(tokens, i.introspectionSecret);
  log(`${s.users} users inserted and their access tokens signed`);

  const judge = (label: string, r: RotatingResult) =>
    checks.check(`${label}: every answer grpc-status 0, active, own sub`, r.wrong === 0 && r.count > 0, `${r.count} answers, ${r.wrong} wrong${r.firstWrong ? ` (${r.firstWrong})` : ''}`);

  // Cold: the first pass, each token presented once; both caches miss on every call.
  const c0 = await cpuSeconds(i.svc.pid);
  const cold = await runRotating(i.svc.grpcUrl, req, { clients: s.clients, streams: s.streams, durationMs: 120_000, maxRequests: tokens.length, check: true });
  const c1 = await cpuSeconds(i.svc.pid);
  const coldOk = judge(`Introspect gRPC, ${s.users} users, cold pass`, cold);

  // Warm: later passes over the same tokens, interleaved with the floor on the same client.
  let cursor = cold.next;
  let wrong = 0;
  let firstWrong: string | undefined;
  let answers = 0;
  let rssMax = 0;
  const m = await interleave(s.rounds, ['latch', 'floor'] as const, async (name): Promise<Slice> => {
    const latch = name === 'latch';
    const p0 = await cpuSeconds(latch ? i.svc.pid : i.floorPid);
    const r = await runRotating(latch ? i.svc.grpcUrl : i.floorGrpcUrl, req, { clients: s.clients, streams: s.streams, durationMs: s.sliceSeconds * 1000, check: latch, start: latch ? cursor : 0 });
    const p1 = await cpuSeconds(latch ? i.svc.pid : i.floorPid);
    if (latch) {
      cursor = r.next;
      wrong += r.wrong;
      answers += r.count;
      firstWrong ??= r.firstWrong;
      rssMax = Math.max(rssMax, (await scrape(i.svc.opsUrl)).rssBytes ?? 0);
    } else if (r.wrong > 0) {
      wrong += r.wrong;
      firstWrong ??= `floor: ${r.firstWrong}`;
    }
    return { count: r.count, seconds: r.seconds, samplesMs: r.samplesMs, cpuSeconds: p0 === undefined || p1 === undefined ? undefined : p1 - p0 };
  });
  const warmOk = checks.check(`Introspect gRPC, ${s.users} users, warm slices (and the floor's grpc-status)`, wrong === 0 && answers > 0, `${answers} answers, ${wrong} wrong${firstWrong ? ` (${firstWrong})` : ''}`);

  // Memory: memoryUsers × memoryTokensPerUser distinct tokens (own jti and sid each), each presented once.
  const rssBefore = (await scrape(i.svc.opsUrl)).rssBytes;
  const many = await mintAccessTokens(i.databaseUrl, i.secretKeyBase64, userIds.slice(0, s.memoryUsers), s.memoryTokensPerUser, i.claims);
  const manyReq = introspectFrames(many, i.introspectionSecret);
  const pass = await runRotating(i.svc.grpcUrl, manyReq, { clients: s.clients, streams: s.streams, durationMs: 600_000, maxRequests: many.length, check: true });
  const memOk = judge(`Introspect gRPC, ${many.length} distinct tokens`, pass);
  const rssAfter = (await scrape(i.svc.opsUrl)).rssBytes;
  log(`RSS ${mib(rssBefore)?.toFixed(0)} MiB before, ${mib(rssAfter)?.toFixed(0)} MiB after ${many.length} distinct tokens`);

  return [
    {
      name: `Introspect gRPC, SHIPPED config, ${s.users} distinct users' tokens, COLD (first pass: every token new; ${shape})`,
      rps: cold.count / cold.seconds,
      latency: cold.latency,
      serverCores: c0 === undefined || c1 === undefined ? undefined : (c1 - c0) / cold.seconds,
      note: `informational (no baseline: a pass that runs once); ${coldOk ? '' : 'CHECK FAILED; '}${cold.count} calls in ${cold.seconds.toFixed(1)} s`,
    },
    {
      name: `Introspect gRPC, SHIPPED config, ${s.users} distinct users' tokens, WARM (later passes; ${shape})`,
      rps: m.latch.rps,
      latency: m.latch.latency,
      serverCores: m.latch.cores,
      rssMiB: mib(rssMax),
      baseline: { name: 'floor (b): bare grpc-js, prebuilt response, same client and shape', rps: m.floor.rps, latency: m.floor.latency },
      ratio: warmOk ? m.latch.rps / m.floor.rps : undefined,
      p50Ratio: warmOk ? m.latch.latency.p50Ms / m.floor.latency.p50Ms : undefined,
      note: `req/s per slice ${spread(m.latch)} vs ${spread(m.floor)}; one pass over the ${s.users} tokens takes ${(s.users / m.latch.rps).toFixed(1)} s at this rate; ${i.caps}`,
    },
    {
      name: `Memory: Introspect gRPC over ${many.length} distinct valid tokens (${s.memoryUsers} users × ${s.memoryTokensPerUser}), each once, after the rows above`,
      rps: pass.count / pass.seconds,
      latency: pass.latency,
      rssMiB: mib(rssAfter),
      note: `${memOk ? '' : 'CHECK FAILED; '}server RSS ${mib(rssBefore)?.toFixed(0)} MiB before the pass, ${mib(rssAfter)?.toFixed(0)} MiB after; ${i.caps}`,
    },
  ];
}
