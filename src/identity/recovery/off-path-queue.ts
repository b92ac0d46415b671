import type { Logger } from '../../shared/logger.js';

/**
 * Runs jobs after the call that submitted them has answered, a few at a time. Password-reset
 * requests do their per-account work here (F1): the answer then costs the same whether the
 * account exists, is disabled or throttled, or the database is slow for it.
 */
/** Long enough for the transport to flush the answer; short against the job's own work. */
const START_DELAY_MS = 2;

export class OffPathQueue {
  private readonly pending: (() => Promise<void>)[] = [];
  private running = 0;
  private idle: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxPending: number,
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  /** False when the queue is full and the job was dropped (logged). */
  submit(job: () => Promise<void>): boolean {
    if (this.pending.length >= this.maxPending) {
      this.logger.warn({ queue: this.what, maxPending: this.maxPending }, 'off-path queue full: job dropped');
      return false;
    }
    this.pending.push(job);
    this.pump();
    return true;
  }

  /** Resolves once nothing is queued or running (shutdown, tests), or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.running === 0 && this.pending.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.pending.length > 0) {
      const job = this.pending.shift()!;
      this.running++;
      // A timer, not setImmediate: the answer must be on the socket before any of the job's work
      // runs, and an immediate still ran before the transport flushed it (the job's CPU then
      // showed in the answer time of accounts that exist).
      setTimeout(() => {
        job()
          .catch((err: unknown) => this.logger.error({ err, queue: this.what }, 'off-path job failed'))
          .finally(() => {
            this.running--;
            this.pump();
            if (this.running === 0 && this.pending.length === 0) for (const fn of this.idle.splice(0)) fn();
          });
      }, START_DELAY_MS);
    }
  }
}
