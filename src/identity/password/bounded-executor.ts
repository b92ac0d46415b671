/**
 * Runs at most `concurrency` tasks at once, split into lanes. Each lane may hold at most
 * `maxActive` of the slots and let at most `queueMax` of its tasks wait, each for at most
 * `queueTimeoutMs`; anything beyond is refused at once with `onBusy()`, so a burst costs a
 * bounded amount of memory (each Argon2 run holds its full memory cost while it runs) and a
 * bounded wait, instead of piling up. [docs/security.md A2]
 *
 * Lanes are listed in priority order: a freed slot goes to the first lane that has a waiter and
 * room under its cap. That is how sign-in keeps its capacity while sign-up floods the hashing of
 * new passwords (docs/security.md A5): the new-password lane is capped below `concurrency` and its
 * waiters never overtake a waiting verify.
 */
export interface LaneOptions<L extends string> {
  name: L;
  /** Slots this lane may hold at once; default: all of them. */
  maxActive?: number;
  /** Tasks of this lane allowed to wait for a slot. */
  queueMax: number;
}

export interface BoundedExecutorOptions<L extends string> {
  concurrency: number;
  /** Highest priority first. */
  lanes: readonly LaneOptions<L>[];
  queueTimeoutMs: number;
  /** The error to throw when a task is refused; `retryAfterMs` is an estimate of the backlog. */
  onBusy: (retryAfterMs: number, lane: L) => Error;
}

export interface RunOptions {
  /** false: start now or be refused, never queue (work that may as well be skipped). */
  wait?: boolean;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

interface Lane<L extends string> {
  name: L;
  maxActive: number;
  queueMax: number;
  active: number;
  waiting: Waiter[];
}

export class BoundedExecutor<L extends string = string> {
  private active = 0;
  private readonly lanes: Lane<L>[];
  private readonly byName = new Map<L, Lane<L>>();
  /** Smoothed task duration, for the retry hint. */
  private avgTaskMs = 100;

  constructor(private readonly options: BoundedExecutorOptions<L>) {
    const { concurrency, lanes, queueTimeoutMs } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be ≥ 1');
    if (!(queueTimeoutMs > 0)) throw new RangeError('queueTimeoutMs must be > 0');
    if (lanes.length === 0) throw new RangeError('at least one lane is needed');
    this.lanes = lanes.map((l) => {
      const maxActive = l.maxActive ?? concurrency;
      if (!Number.isInteger(maxActive) || maxActive < 1) throw new RangeError(`${l.name}: maxActive must be ≥ 1`);
      if (!Number.isInteger(l.queueMax) || l.queueMax < 0) throw new RangeError(`${l.name}: queueMax must be ≥ 0`);
      if (this.byName.has(l.name)) throw new RangeError(`${l.name}: duplicate lane`);
      const lane: Lane<L> = { name: l.name, maxActive: Math.min(maxActive, concurrency), queueMax: l.queueMax, active: 0, waiting: [] };
      this.byName.set(l.name, lane);
      return lane;
    });
  }

  /** Tasks running, in all lanes or in one. */
  inFlight(lane?: L): number {
    return lane === undefined ? this.active : this.lane(lane).active;
  }

  /** Tasks waiting for a slot, in all lanes or in one. */
  queued(lane?: L): number {
    return lane === undefined ? this.lanes.reduce((n, l) => n + l.waiting.length, 0) : this.lane(lane).waiting.length;
  }

  /**
   * Throws the refusal run() would give a task of `lane` right now (no slot and a full queue),
   * so a caller can turn work away before spending anything else on it.
   */
  assertRoom(laneName: L): void {
    const lane = this.lane(laneName);
    if (!this.canStart(lane) && lane.waiting.length >= lane.queueMax) throw this.busy(lane);
  }

  async run<T>(laneName: L, task: () => Promise<T>, opts: RunOptions = {}): Promise<T> {
    const lane = this.lane(laneName);
    // After every dispatch no waiter can take a free slot, so a newcomer that can start now
    // overtakes nobody; one that cannot joins the back of its own lane.
    if (this.canStart(lane)) this.take(lane);
    else await this.waitForSlot(lane, opts.wait ?? true);
    const started = performance.now();
    try {
      return await task();
    } finally {
      this.avgTaskMs = 0.8 * this.avgTaskMs + 0.2 * (performance.now() - started);
      this.release(lane);
    }
  }

  private lane(name: L): Lane<L> {
    const lane = this.byName.get(name);
    if (lane === undefined) throw new RangeError(`unknown lane ${name}`);
    return lane;
  }

  private canStart(lane: Lane<L>): boolean {
    return this.active < this.options.concurrency && lane.active < lane.maxActive;
  }

  private take(lane: Lane<L>): void {
    this.active++;
    lane.active++;
  }

  private waitForSlot(lane: Lane<L>, wait: boolean): Promise<void> {
    if (!wait || lane.waiting.length >= lane.queueMax) return Promise.reject(this.busy(lane));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        // dispatch() has already counted the slot for this task.
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = lane.waiting.indexOf(waiter);
          if (i !== -1) lane.waiting.splice(i, 1);
          reject(this.busy(lane));
        }, this.options.queueTimeoutMs),
      };
      lane.waiting.push(waiter);
    });
  }

  private release(lane: Lane<L>): void {
    this.active--;
    lane.active--;
    this.dispatch();
  }

  /** Hands free slots to waiters, highest-priority lane first, FIFO within a lane. */
  private dispatch(): void {
    for (const lane of this.lanes) {
      while (lane.waiting.length > 0 && this.canStart(lane)) {
        this.take(lane);
        lane.waiting.shift()!.start();
      }
      if (this.active >= this.options.concurrency) return;
    }
  }

  /** The wait ahead of a newcomer in `lane`: everything running plus every waiter it cannot overtake. */
  private busy(lane: Lane<L>): Error {
    let ahead = this.active;
    for (const l of this.lanes) {
      ahead += l.waiting.length;
      if (l === lane) break;
    }
    const retryAfterMs = Math.max(100, Math.ceil((this.avgTaskMs * ahead) / lane.maxActive));
    return this.options.onBusy(retryAfterMs, lane.name);
  }
}
