/**
 * Runs at most `concurrency` tasks at once and lets at most `queueMax` more wait, each for at
 * most `queueTimeoutMs`. Anything beyond is refused at once with `onBusy()`, so a burst costs a
 * bounded amount of memory (each Argon2 run holds its full memory cost while it runs) and a
 * bounded wait, instead of piling up. [SECURITY.md A2]
 */
export interface BoundedExecutorOptions {
  concurrency: number;
  queueMax: number;
  queueTimeoutMs: number;
  /** The error to throw when a task is refused; `retryAfterMs` is an estimate of the backlog. */
  onBusy: (retryAfterMs: number) => Error;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

export class BoundedExecutor {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  /** Smoothed task duration, for the retry hint. */
  private avgTaskMs = 100;

  constructor(private readonly options: BoundedExecutorOptions) {
    const { concurrency, queueMax, queueTimeoutMs } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be ≥ 1');
    if (!Number.isInteger(queueMax) || queueMax < 0) throw new RangeError('queueMax must be ≥ 0');
    if (!(queueTimeoutMs > 0)) throw new RangeError('queueTimeoutMs must be > 0');
  }

  inFlight(): number {
    return this.active;
  }

  queued(): number {
    return this.waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.options.concurrency) await this.waitForSlot();
    else this.active++;
    const started = performance.now();
    try {
      return await task();
    } finally {
      this.avgTaskMs = 0.8 * this.avgTaskMs + 0.2 * (performance.now() - started);
      this.release();
    }
  }

  private waitForSlot(): Promise<void> {
    if (this.waiting.length >= this.options.queueMax) return Promise.reject(this.busy());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        // The slot is handed over by release(): `active` stays counted for the new task.
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter);
          if (i !== -1) this.waiting.splice(i, 1);
          reject(this.busy());
        }, this.options.queueTimeoutMs),
      };
      this.waiting.push(waiter);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next.start();
    else this.active--;
  }

  private busy(): Error {
    const backlog = this.active + this.waiting.length;
    const retryAfterMs = Math.max(100, Math.ceil((this.avgTaskMs * backlog) / this.options.concurrency));
    return this.options.onBusy(retryAfterMs);
  }
}
