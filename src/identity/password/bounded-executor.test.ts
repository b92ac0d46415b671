import { describe, expect, it } from 'vitest';
import { BoundedExecutor } from './bounded-executor.js';

class Busy extends Error {
  constructor(readonly retryAfterMs: number) {
    super('busy');
  }
}

/** A task that finishes only when the test says so. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, task: () => opened.then(() => 'done') };
}

const make = (concurrency: number, queueMax: number, queueTimeoutMs = 10_000) =>
  new BoundedExecutor({ concurrency, queueMax, queueTimeoutMs, onBusy: (ms) => new Busy(ms) });

describe('BoundedExecutor', () => {
  it('runs `concurrency` tasks, queues `queueMax`, refuses the rest at once', async () => {
    const ex = make(2, 1);
    const gates = Array.from({ length: 5 }, gate);
    const runs = gates.map((g) => ex.run(g.task));
    const refused = await Promise.allSettled(runs.slice(3));
    expect(refused.every((r) => r.status === 'rejected' && r.reason instanceof Busy)).toBe(true);
    expect((refused[0] as PromiseRejectedResult).reason.retryAfterMs).toBeGreaterThan(0);
    expect([ex.inFlight(), ex.queued()]).toEqual([2, 1]);

    gates[0]!.open();
    await runs[0];
    expect([ex.inFlight(), ex.queued()]).toEqual([2, 0]); // the queued task took the slot
    gates[1]!.open();
    gates[2]!.open();
    await expect(Promise.all(runs.slice(0, 3))).resolves.toEqual(['done', 'done', 'done']);
    expect([ex.inFlight(), ex.queued()]).toEqual([0, 0]);
  });

  it('gives up on a queued task after queueTimeoutMs and frees its place', async () => {
    const ex = make(1, 1, 30);
    const g = gate();
    const first = ex.run(g.task);
    await expect(ex.run(async () => 'never')).rejects.toBeInstanceOf(Busy);
    expect(ex.queued()).toBe(0);
    g.open();
    await expect(first).resolves.toBe('done');
    await expect(ex.run(async () => 'later')).resolves.toBe('later');
  });

  it('releases the slot when a task throws', async () => {
    const ex = make(1, 0);
    await expect(ex.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(ex.inFlight()).toBe(0);
    await expect(ex.run(async () => 1)).resolves.toBe(1);
  });
});
