import { knex } from '@mikro-orm/postgresql';

/**
 * Deterministic races for concurrency tests: a transaction of the test's own holds a lock while
 * the code under test piles up behind it, and the test lets go only once every contender is
 * provably waiting inside PostgreSQL. Contenders never have to be lucky enough to meet.
 */
export interface LockProbe {
  /** Runs `sql` in a transaction of its own connection; its locks stay held until `release()`. */
  hold(sql: string, params?: unknown[]): Promise<HeldLock>;
  /**
   * Resolves once exactly `n` other sessions of this database wait on a heavyweight lock (row,
   * table, transaction or advisory). More than `n`, or fewer when `timeoutMs` runs out, rejects
   * with the waiting statements, so a design mistake shows up as such and not as a hang.
   */
  waitForWaiters(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface HeldLock {
  /** Commits the holding transaction, letting the waiters go. */
  release(): Promise<void>;
}

interface Waiter {
  pid: number;
  wait_event: string | null;
  query: string;
}

export function lockProbe(databaseUrl: string): LockProbe {
  // One connection for the holding transaction, one for looking at pg_stat_activity.
  const db = knex({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 2 } });
  const held: Array<{ rollback(): Promise<unknown>; isCompleted(): boolean }> = [];
  return {
    async hold(sql, params = []) {
      const trx = await db.transaction();
      held.push(trx);
      try {
        await trx.raw(sql, params as never);
      } catch (e) {
        await trx.rollback().catch(() => undefined);
        throw e;
      }
      return {
        release: async () => {
          if (!trx.isCompleted()) await trx.commit();
        },
      };
    },
    async waitForWaiters(n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const res = await db.raw<{ rows: Waiter[] }>(
          `select pid, wait_event, left(query, 200) as query from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
        );
        const waiting = res.rows;
        if (waiting.length === n) return;
        if (waiting.length > n || Date.now() > deadline) {
          const what = waiting.map((w) => `${w.pid} (${w.wait_event}): ${w.query.replace(/\s+/g, ' ')}`).join('\n  ');
          throw new Error(`expected ${n} sessions waiting on a lock, saw ${waiting.length}:\n  ${what}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      // A test that failed half-way must not leave its lock behind for the drop of the database.
      for (const trx of held) if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
      await db.destroy();
    },
  };
}

/** A gate that async work can park on until the test opens it; counts who has arrived. */
export class Barrier {
  private arrivedCount = 0;
  private opened!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.opened = resolve));
  private readonly watchers: Array<{ n: number; resolve: () => void }> = [];

  get arrived(): number {
    return this.arrivedCount;
  }

  /** Called by the parked work: resolves when the barrier opens. */
  async wait(): Promise<void> {
    this.arrivedCount++;
    for (const w of this.watchers.filter((x) => x.n <= this.arrivedCount)) {
      this.watchers.splice(this.watchers.indexOf(w), 1);
      w.resolve();
    }
    await this.gate;
  }

  /** Resolves once `n` callers are parked. */
  whenArrived(n: number): Promise<void> {
    if (this.arrivedCount >= n) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ n, resolve }));
  }

  open(): void {
    this.opened();
  }
}
