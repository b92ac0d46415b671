import { summarize, type LatencySummary } from './stats.js';

/**
 * Figures pooled over several short runs. Subject and baseline alternate (A B A B ...) so that a
 * change in background load during the run hits both sides instead of skewing the ratio.
 */

export interface Slice {
  count: number;
  seconds: number;
  samplesMs: number[];
  /** Server CPU seconds used during the slice, when known. */
  cpuSeconds?: number;
}

export interface Pooled {
  rps: number;
  count: number;
  seconds: number;
  latency: LatencySummary;
  /** Average server CPU use in cores over the slices. */
  cores?: number;
  /** Throughput of each slice, to show the spread. */
  sliceRps: number[];
}

export function pool(slices: readonly Slice[]): Pooled {
  const count = slices.reduce((a, s) => a + s.count, 0);
  const seconds = slices.reduce((a, s) => a + s.seconds, 0);
  const cpu = slices.every((s) => s.cpuSeconds !== undefined) ? slices.reduce((a, s) => a + s.cpuSeconds!, 0) : undefined;
  return {
    rps: count / seconds,
    count,
    seconds,
    latency: summarize(slices.flatMap((s) => s.samplesMs)),
    cores: cpu === undefined ? undefined : cpu / seconds,
    sliceRps: slices.map((s) => s.count / s.seconds),
  };
}

/**
 * Runs `rounds` rounds of every named measurement in turn and pools each one's slices. Every
 * other round runs them in reverse (A B C, C B A, ...), so with an even number of rounds a
 * steady drift of the machine's speed over the set weighs on every figure alike.
 */
export async function interleave<K extends string>(rounds: number, order: readonly K[], run: (name: K, round: number) => Promise<Slice>): Promise<Record<K, Pooled>> {
  const slices = Object.fromEntries(order.map((k) => [k, [] as Slice[]])) as Record<K, Slice[]>;
  const reversed = [...order].reverse();
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? order : reversed) slices[name].push(await run(name, r));
  }
  return Object.fromEntries(order.map((k) => [k, pool(slices[k])])) as Record<K, Pooled>;
}

/** Each slice's throughput, to show the spread beside a pooled figure. */
export function spread(p: Pooled): string {
  return p.sliceRps.map((x) => x.toFixed(x < 100 ? 1 : 0)).join(', ');
}
