/** Latency summaries for the benchmark; all times in milliseconds. */

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  const arr = Array.from(sorted);
  const sum = arr.reduce((a, b) => a + b, 0);
  return {
    count: arr.length,
    p50Ms: percentile(arr, 50),
    p99Ms: percentile(arr, 99),
    maxMs: arr.length ? arr[arr.length - 1]! : Number.NaN,
    meanMs: arr.length ? sum / arr.length : Number.NaN,
  };
}

export interface LoopResult {
  ok: number;
  failed: number;
  seconds: number;
  latency: LatencySummary;
  samplesMs: number[];
  firstError?: string;
}

/**
 * Keeps `concurrency` calls of `call` in flight until `durationMs` has passed; per-call latency.
 * A worker stops early when `call` resolves false (no more work).
 */
export async function closedLoop(
  concurrency: number,
  durationMs: number,
  call: (worker: number) => Promise<boolean>,
): Promise<LoopResult> {
  const samples: number[] = [];
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async (w: number) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const good = await call(w);
        if (good === false) break;
        samples.push(performance.now() - t0);
        ok++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - start) / 1000;
  return { ok, failed, seconds, latency: summarize(samples), samplesMs: samples, firstError };
}
