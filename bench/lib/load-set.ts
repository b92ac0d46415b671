import type { Checks } from './checks.js';
import { runH2load, type LoadRequest } from './h2load.js';
import { interleave, spread, type Pooled, type Slice } from './measure.js';
import type { Row } from './report.js';
import { cpuSeconds, delta, rssOfPid, scrape, type Scrape } from './server-stats.js';

/**
 * A set of unary methods replayed by h2load in interleaved slices (A B C A B C ...), so that
 * background load drifting during the run hits every figure of the set alike. Every figure comes
 * with its correctness checks: the exact request h2load sends, answered correctly once before the
 * load, and, for the identity service, its own count of answers by code under load.
 */

export interface LoadShape {
  clients: number;
  streamsPerClient: number;
  /** HTTP/1.1 (Connect JSON) instead of HTTP/2 (gRPC). */
  h1?: boolean;
}

export interface LoadTarget {
  /** Names the figure in logs and checks. */
  label: string;
  baseUrl: string;
  request: LoadRequest;
  shape: LoadShape;
  /** The server process: CPU time and, for floors, resident set from /proc. */
  pid: number;
  /** The identity service's ops listener and the method's full name ("identity.v1.X/Y"): counters, RSS and event-loop delay. */
  service?: { opsUrl: string; method: string };
  /** Checks the answer to the exact request once, before the load. */
  probe(): Promise<{ ok: boolean; detail: string }>;
}

export interface SetSettings {
  warmupRequests: number;
  rounds: number;
  sliceSeconds: number;
}

export interface Measured extends Pooled {
  /** The probe and the load checks passed; ratios are only computed when true. */
  correct: boolean;
  /** Largest resident set seen at the end of a slice. */
  rssMiB?: number;
  /** Event-loop delay inside the service over the slices (worst slice's p99, largest max). */
  loopDelay?: { p99Ms: number; maxMs: number };
}

interface Tally {
  responses: number;
  failedStreams: number;
  serverOk?: number;
  serverOther?: number;
  rss: number[];
  loop: { p99Ms: number; maxMs: number }[];
}

export async function measureSet<K extends string>(
  targets: Record<K, LoadTarget>,
  settings: SetSettings,
  checks: Checks,
  log: (msg: string) => void,
): Promise<Record<K, Measured>> {
  const order = Object.keys(targets) as K[];
  const probed = {} as Record<K, boolean>;
  for (const k of order) {
    const p = await targets[k].probe();
    probed[k] = checks.check(`${targets[k].label} (the exact h2load request)`, p.ok, p.detail);
  }
  for (const k of order) await runH2load(targets[k].baseUrl, targets[k].request, { ...targets[k].shape, requests: settings.warmupRequests });

  const tallies = Object.fromEntries(order.map((k) => [k, { responses: 0, failedStreams: 0, rss: [], loop: [] } as Tally])) as Record<K, Tally>;
  const pooled = await interleave(settings.rounds, order, async (k) => {
    const t = targets[k];
    const tally = tallies[k];
    const before = t.service ? await scrape(t.service.opsUrl) : undefined; // also resets the loop-delay histogram
    const cpu0 = await cpuSeconds(t.pid);
    const result = await runH2load(t.baseUrl, t.request, { ...t.shape, durationSeconds: settings.sliceSeconds });
    const cpu1 = await cpuSeconds(t.pid);
    const after: Scrape | undefined = t.service ? await scrape(t.service.opsUrl) : undefined;
    log(`${t.label}: ${result.rps.toFixed(0)} req/s, p50 ${result.latency.p50Ms.toFixed(2)} ms, p99 ${result.latency.p99Ms.toFixed(2)} ms`);
    tally.responses += result.succeeded;
    tally.failedStreams += result.failed;
    if (t.service && before && after) {
      const d = delta(before.counts, after.counts, t.service.method);
      tally.serverOk = (tally.serverOk ?? 0) + d.ok;
      tally.serverOther = (tally.serverOther ?? 0) + Object.values(d.other).reduce((a, b) => a + b, 0);
      if (after.loopDelay) tally.loop.push(after.loopDelay);
    }
    const rss = after?.rssBytes ?? (await rssOfPid(t.pid));
    if (rss !== undefined) tally.rss.push(rss);
    return { count: result.succeeded, seconds: result.seconds, samplesMs: result.samplesMs, cpuSeconds: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 } satisfies Slice;
  });

  const out = {} as Record<K, Measured>;
  for (const k of order) {
    const tally = tallies[k];
    const loadOk = checkTally(checks, `${targets[k].label} under load`, tally);
    out[k] = {
      ...pooled[k],
      correct: probed[k] && loadOk,
      rssMiB: tally.rss.length ? Math.max(...tally.rss) / 2 ** 20 : undefined,
      loopDelay: tally.loop.length ? { p99Ms: Math.max(...tally.loop.map((l) => l.p99Ms)), maxMs: Math.max(...tally.loop.map((l) => l.maxMs)) } : undefined,
    };
  }
  return out;
}

/**
 * h2load's "succeeded" means HTTP 2xx (a gRPC status travels in the trailers), so for the service
 * its own counters must show every call OK; a few more than h2load counted were cut off at the deadline.
 */
function checkTally(checks: Checks, label: string, tally: Tally): boolean {
  const streamsOk = tally.failedStreams === 0 && tally.responses > 0;
  const serverOk = tally.serverOk === undefined || (tally.serverOther === 0 && tally.serverOk >= tally.responses);
  const server = tally.serverOk === undefined ? '' : `; server counted ${tally.serverOk} OK and ${tally.serverOther} other codes`;
  return checks.check(label, streamsOk && serverOk, `${tally.responses} responses, ${tally.failedStreams} failed streams${server}`);
}

/** A row: the subject beside a baseline measured in the same interleaved set. */
export function vsRow(name: string, subject: Measured, baselineName: string, baseline: Measured, target?: number): Row {
  const ok = subject.correct && baseline.correct;
  return {
    name,
    rps: subject.rps,
    latency: subject.latency,
    serverCores: subject.cores,
    rssMiB: subject.rssMiB,
    loopDelay: subject.loopDelay,
    baseline: { name: baselineName, rps: baseline.rps, latency: baseline.latency, rssMiB: baseline.rssMiB, serverCores: baseline.cores },
    ratio: ok ? subject.rps / baseline.rps : undefined,
    p50Ratio: ok ? subject.latency.p50Ms / baseline.latency.p50Ms : undefined,
    target,
    note: `req/s per slice ${spread(subject)} vs ${spread(baseline)}${cpuPerCallNote(subject, baseline)}`,
  };
}

/**
 * Server CPU per answered call on each side. The load generator shares the 2 cores, so a
 * throughput ratio also moves with how much CPU it takes per request (more for bigger messages);
 * the server's own cost per call does not.
 */
function cpuPerCallNote(subject: Measured, baseline: Measured): string {
  const us = (m: Measured) => (m.cores === undefined || m.rps === 0 ? undefined : (m.cores / m.rps) * 1e6);
  const a = us(subject);
  const b = us(baseline);
  if (a === undefined || b === undefined) return '';
  return `; server CPU per call ${a.toFixed(1)} µs vs ${b.toFixed(1)} µs (baseline's cost / subject's: ${(b / a).toFixed(2)})`;
}
