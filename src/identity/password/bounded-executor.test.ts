import { describe, expect, it } from 'vitest';
import { BoundedExecutor, type LaneOptions } from './bounded-executor.js';

class Busy extends Error {
  constructor(
    readonly retryAfterMs: number,
    readonly lane: string,
  ) {
    super('busy');
  }
}

/** A task that finishes only when the test says so, and records when it started. */
function gate(log: string[] = [], name = '') {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return {
    open,
    task: () => {
      log.push(name);
      return opened.then(() => 'done');
    },
  };
}

/** Lets settled promises run their continuations (no timers involved). */
const flush = () => new Promise<void>((r) => setImmediate(r));

const make = (concurrency: number, queueMax: number, queueTimeoutMs = 10_000) =>
  new BoundedExecutor({ concurrency, lanes: [{ name: 'only', queueMax }], queueTimeoutMs, onBusy: (ms, lane) => new Busy(ms, lane) });

type L = 'verify' | 'new';
const lanes = (newMax: number, newQueue: number, verifyQueue = 10): LaneOptions<L>[] => [
  { name: 'verify', queueMax: verifyQueue },
  { name: 'new', maxActive: newMax, queueMax: newQueue },
];
const makeLanes = (concurrency: number, newMax: number, newQueue: number, verifyQueue = 10, queueTimeoutMs = 10_000) =>
  new BoundedExecutor<L>({ concurrency, lanes: lanes(newMax, newQueue, verifyQueue), queueTimeoutMs, onBusy: (ms, lane) => new Busy(ms, lane) });

describe('BoundedExecutor', () => {
  it('runs `concurrency` tasks, queues `queueMax`, refuses the rest at once', async () => {
    const ex = make(2, 1);
    const gates = Array.from({ length: 5 }, () => gate());
    const runs = gates.map((g) => ex.run('only', g.task));
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
    const first = ex.run('only', g.task);
    await expect(ex.run('only', async () => 'never')).rejects.toBeInstanceOf(Busy);
    expect(ex.queued()).toBe(0);
    g.open();
    await expect(first).resolves.toBe('done');
    await expect(ex.run('only', async () => 'later')).resolves.toBe('later');
  });

  it('releases the slot when a task throws', async () => {
    const ex = make(1, 0);
    await expect(ex.run('only', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(ex.inFlight()).toBe(0);
    await expect(ex.run('only', async () => 1)).resolves.toBe(1);
  });

  it('refuses nonsense settings', () => {
    const onBusy = () => new Error('busy');
    expect(() => new BoundedExecutor({ concurrency: 0, lanes: [{ name: 'a', queueMax: 1 }], queueTimeoutMs: 1, onBusy })).toThrow(RangeError);
    expect(() => new BoundedExecutor({ concurrency: 1, lanes: [], queueTimeoutMs: 1, onBusy })).toThrow(RangeError);
    expect(() => new BoundedExecutor({ concurrency: 1, lanes: [{ name: 'a', queueMax: -1 }], queueTimeoutMs: 1, onBusy })).toThrow(RangeError);
    expect(() => new BoundedExecutor({ concurrency: 1, lanes: [{ name: 'a', maxActive: 0, queueMax: 1 }], queueTimeoutMs: 1, onBusy })).toThrow(RangeError);
    expect(() => new BoundedExecutor({ concurrency: 1, lanes: [{ name: 'a', queueMax: 1 }, { name: 'a', queueMax: 1 }], queueTimeoutMs: 1, onBusy })).toThrow(RangeError);
  });
});

describe('BoundedExecutor lanes (A5)', () => {
  it('a capped lane never holds more than its share, however many of its tasks arrive', async () => {
    const ex = makeLanes(3, 1, 4);
    const gates = Array.from({ length: 5 }, () => gate());
    const runs = gates.map((g) => ex.run('new', g.task));
    expect([ex.inFlight('new'), ex.queued('new'), ex.inFlight()]).toEqual([1, 4, 1]);
    // The other slots stay free for the priority lane: verifies start at once.
    const v = [gate(), gate()];
    const verifies = v.map((g) => ex.run('verify', g.task));
    expect([ex.inFlight('verify'), ex.queued('verify')]).toEqual([2, 0]);
    for (const g of [...v, ...gates]) g.open();
    await Promise.all([...runs, ...verifies]);
    expect([ex.inFlight(), ex.queued()]).toEqual([0, 0]);
  });

  it('a capped lane has its own queue limit; the other lane keeps its own', async () => {
    const ex = makeLanes(2, 1, 2, 3);
    const gates = Array.from({ length: 6 }, () => gate());
    const runs = gates.map((g) => ex.run('new', g.task));
    const settled = await Promise.allSettled(runs.slice(3));
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect((s as PromiseRejectedResult).reason).toMatchObject({ lane: 'new' });
    }
    expect([ex.inFlight('new'), ex.queued('new')]).toEqual([1, 2]);
    // The new-secret queue being full costs the verify lane nothing: one runs, three wait.
    const vg = Array.from({ length: 5 }, () => gate());
    const verifies = vg.map((g) => ex.run('verify', g.task));
    expect([ex.inFlight('verify'), ex.queued('verify')]).toEqual([1, 3]);
    await expect(verifies[4]).rejects.toMatchObject({ lane: 'verify' });
    for (const g of [...vg, ...gates]) g.open();
    await Promise.all([...runs.slice(0, 3), ...verifies.slice(0, 4)]);
  });

  it('a freed slot goes to a waiting verify before any waiting new-secret hash, whoever came first', async () => {
    // One slot, so every handover is a choice between the two lanes.
    const ex = makeLanes(1, 1, 5);
    const started: string[] = [];
    const first = gate(started, 'n0');
    const n0 = ex.run('new', first.task);
    const waitingNew = [1, 2].map((i) => gate(started, `n${i}`));
    const newRuns = waitingNew.map((g) => ex.run('new', g.task));
    const waitingVerify = [1, 2].map((i) => gate(started, `v${i}`));
    const verifyRuns = waitingVerify.map((g) => ex.run('verify', g.task));
    expect([ex.queued('new'), ex.queued('verify')]).toEqual([2, 2]);

    first.open();
    await n0;
    await flush();
    expect(started).toEqual(['n0', 'v1']);
    waitingVerify[0]!.open();
    await verifyRuns[0];
    await flush();
    expect(started).toEqual(['n0', 'v1', 'v2']);
    // A verify arriving while new-secret hashes wait still goes ahead of them.
    const late = gate(started, 'v3');
    const lateRun = ex.run('verify', late.task);
    waitingVerify[1]!.open();
    await verifyRuns[1];
    await flush();
    expect(started).toEqual(['n0', 'v1', 'v2', 'v3']);
    late.open();
    await lateRun;
    await flush();
    expect(started).toEqual(['n0', 'v1', 'v2', 'v3', 'n1']);
    waitingNew[0]!.open();
    waitingNew[1]!.open();
    await Promise.all(newRuns);
    expect(started).toEqual(['n0', 'v1', 'v2', 'v3', 'n1', 'n2']);
  });

  it('a newcomer in the capped lane queues behind its own lane even when a slot is free', async () => {
    const ex = makeLanes(2, 1, 5);
    const started: string[] = [];
    const a = gate(started, 'a');
    const b = gate(started, 'b');
    const ra = ex.run('new', a.task);
    const rb = ex.run('new', b.task);
    expect([ex.inFlight(), ex.queued('new')]).toEqual([1, 1]);
    a.open();
    await ra;
    await flush();
    expect(started).toEqual(['a', 'b']);
    b.open();
    await rb;
  });

  it('wait:false starts at once or is refused at once, never queues', async () => {
    const ex = makeLanes(2, 1, 5);
    const g = gate();
    const running = ex.run('new', g.task);
    await expect(ex.run('new', async () => 'x', { wait: false })).rejects.toMatchObject({ lane: 'new' });
    expect(ex.queued('new')).toBe(0);
    g.open();
    await running;
    await expect(ex.run('new', async () => 'now', { wait: false })).resolves.toBe('now');
  });

  it('a capped waiter that times out leaves the lane consistent', async () => {
    const ex = makeLanes(2, 1, 5, 10, 20);
    const g = gate();
    const running = ex.run('new', g.task);
    await expect(ex.run('new', async () => 'never')).rejects.toMatchObject({ lane: 'new' });
    expect([ex.inFlight('new'), ex.queued('new')]).toEqual([1, 0]);
    g.open();
    await running;
    expect([ex.inFlight(), ex.queued()]).toEqual([0, 0]);
  });
});

describe('BoundedExecutor.assertRoom', () => {
  it('throws exactly when run() would refuse at once', async () => {
    const ex = makeLanes(2, 1, 1);
    const gates = [gate(), gate()];
    ex.assertRoom('new');
    const a = ex.run('new', gates[0]!.task);
    ex.assertRoom('new'); // a slot is taken but the queue has room
    const b = ex.run('new', gates[1]!.task);
    expect(() => ex.assertRoom('new')).toThrow(Busy);
    ex.assertRoom('verify'); // the other lane is unaffected
    for (const g of gates) g.open();
    await Promise.all([a, b]);
    ex.assertRoom('new');
  });
});
