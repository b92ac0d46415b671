import { readFile } from 'node:fs/promises';

/** What the service itself says about a run: RPC counts by code (from /metrics) and CPU time. */

export type RpcCounts = Map<string, number>;

/** `latch_rpc_duration_seconds_count` by "Service/Method code transport". */
export async function rpcCounts(opsUrl: string): Promise<RpcCounts> {
  return (await scrape(opsUrl)).counts;
}

export interface Scrape {
  counts: RpcCounts;
  /** process_resident_memory_bytes. */
  rssBytes?: number;
  /**
   * prom-client's event-loop delay (perf_hooks monitorEventLoopDelay inside the service). Its
   * histogram is reset on every scrape, so these cover the time since the previous scrape.
   */
  loopDelay?: { p50Ms: number; p99Ms: number; maxMs: number };
}

/** One read of /metrics on the ops listener. */
export async function scrape(opsUrl: string): Promise<Scrape> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  const gauge = (suffix: string) => {
    const m = new RegExp(`^\\w*${suffix}(?:\\{[^}]*\\})?\\s+([\\d.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const [p50, p99, max] = ['nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds'].map(gauge);
  return {
    counts: parseCounts(text),
    rssBytes: gauge('process_resident_memory_bytes'),
    loopDelay: p50 === undefined || p99 === undefined || max === undefined ? undefined : { p50Ms: p50 * 1e3, p99Ms: p99 * 1e3, maxMs: max * 1e3 },
  };
}

/** Resident set of any local process (the floors have no /metrics); undefined off Linux. */
export async function rssOfPid(pid: number): Promise<number | undefined> {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function parseCounts(text: string): RpcCounts {
  const out: RpcCounts = new Map();
  for (const line of text.split('\n')) {
    const m = /^latch_rpc_duration_seconds_count\{([^}]*)\}\s+([\d.e+]+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    out.set(`${labels.service}/${labels.method} ${labels.code} ${labels.transport}`, Number(m[2]));
  }
  return out;
}

/** Calls of one method between two snapshots, split into ok and anything else. */
export function delta(before: RpcCounts, after: RpcCounts, method: string): { ok: number; other: Record<string, number> } {
  let ok = 0;
  const other: Record<string, number> = {};
  for (const [key, value] of after) {
    const [name, code] = key.split(' ');
    if (name!.toLowerCase() !== method.toLowerCase()) continue;
    const d = value - (before.get(key) ?? 0);
    if (d === 0) continue;
    if (code === 'ok') ok += d;
    else other[key] = d;
  }
  return { ok, other };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU seconds of a process so far; undefined off Linux. */
export function cpuSeconds(pid: number): Promise<number | undefined> {
  return cpuSecondsOf(`/proc/${pid}/stat`);
}

/**
 * The same for the process's main thread alone: for a Node process, the event loop (JavaScript,
 * protocol work, the I/O calls it makes), without libuv's pool (Argon2 runs there), GC helpers and
 * the rest of the threads.
 */
export function mainThreadCpuSeconds(pid: number): Promise<number | undefined> {
  return cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`);
}

async function cpuSecondsOf(statPath: string): Promise<number | undefined> {
  try {
    const stat = await readFile(statPath, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
