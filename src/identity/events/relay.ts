import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { OutboxStore, type ClaimedEvent } from './outbox-store.js';
import { DEFAULT_SUBJECT_PREFIX } from './subjects.js';
import { WakeableSleep } from '../../shared/wakeable-sleep.js';

/** Where the relay sends events: JetStream in production, the in-process publisher otherwise. */
export interface EventPublisher {
  /**
   * Resolves once the event is stored (JetStream ack). `msgId` is the outbox id; publishing the
   * same id again inside the stream's duplicate window stores nothing new.
   */
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<void>;
}

export interface OutboxRelayOptions {
  orm: MikroORM;
  publisher: EventPublisher;
  logger: Logger;
  clock: Clock;
  /** Rows store the event name; they are published to `${subjectPrefix}.${name}`. */
  subjectPrefix?: string;
  /** Rows claimed per round trip. */
  batchSize?: number;
  /** How often to look for work when nobody calls kick(). */
  pollIntervalMs?: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * How long a claim keeps other relays away from a row. Must exceed the time to publish one
   * batch; if this relay dies mid-batch, another one picks the rows up after it.
   */
  leaseMs?: number;
  /**
   * True (the default, for a broker): a failed publish holds back the rest of its batch, as the
   * broker is most likely away for all of them. False (in-process): a failure is that event's
   * alone (a mail the SMTP server would not take yet), so the others go on without it.
   */
  holdBatchOnFailure?: boolean;
}

export interface RelayRound {
  claimed: number;
  published: number;
  failed: number;
}

const MAX_ERROR_LENGTH = 500;

/**
 * Publishes committed outbox rows (docs/architecture.md "Events", docs/security.md E1). Several replicas
 * run one each: rows are claimed with `for update skip locked` and leased, so in the normal case
 * each row is published by one relay once; after a crash or a lost ack a row is published again
 * with the same Nats-Msg-Id and JetStream drops the duplicate.
 */
export class OutboxRelay {
  private readonly store: OutboxStore;
  private readonly publisher: EventPublisher;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly subjectPrefix: string;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly leaseMs: number;
  private readonly holdBatchOnFailure: boolean;

  private running = false;
  private loop: Promise<void> | undefined;
  private kicked = false;
  private readonly pause = new WakeableSleep();

  constructor(options: OutboxRelayOptions) {
    this.store = new OutboxStore(options.orm);
    this.publisher = options.publisher;
    this.logger = options.logger;
    this.clock = options.clock;
    this.subjectPrefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    this.batchSize = options.batchSize ?? 100;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.baseBackoffMs = options.baseBackoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.holdBatchOnFailure = options.holdBatchOnFailure ?? true;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Look for work now instead of at the next poll. Called after a commit that enqueued an event,
   * so a revocation broadcast leaves within milliseconds rather than a poll interval.
   */
  kick(): void {
    this.kicked = true;
    this.pause.wake();
  }

  /** Stops polling after the batch in flight has been published and recorded. */
  async stop(): Promise<void> {
    this.running = false;
    this.pause.wake();
    await this.loop;
    this.loop = undefined;
  }

  /** One claim-and-publish round; the loop calls it, tests may call it directly. */
  async runOnce(): Promise<RelayRound> {
    const rows = await this.claim();
    const round: RelayRound = { claimed: rows.length, published: 0, failed: 0 };
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      try {
        await this.publisher.publish(`${this.subjectPrefix}.${row.subject}`, row.payload, row.id);
      } catch (err) {
        round.failed++;
        const retryAt = await this.recordFailure(row, err);
        if (!this.holdBatchOnFailure) continue;
        // The broker is most likely away: the rest of the batch waits with this row instead of
        // each waiting out a publish timeout now. They were not attempted, so attempts stays.
        await this.release(rows.slice(i + 1), retryAt);
        break;
      }
      await this.markPublished(row.id);
      round.published++;
    }
    return round;
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.kicked = false;
      let full = false;
      try {
        const round = await this.runOnce();
        full = round.claimed === this.batchSize && round.failed === 0;
      } catch (err) {
        // Database away: keep polling; the rows are safe where they are.
        this.logger.warn({ err }, 'outbox relay: claim failed');
      }
      if (!this.running) break;
      if (!full && !this.kicked) await this.pause.sleep(this.pollIntervalMs);
    }
  }


  private claim(): Promise<ClaimedEvent[]> {
    const now = this.clock.nowMs();
    return this.store.claim(new Date(now), this.batchSize, new Date(now + this.leaseMs));
  }

  private async markPublished(id: string): Promise<void> {
    await this.store.markPublished(id, new Date(this.clock.nowMs()));
  }

  private async recordFailure(row: ClaimedEvent, err: unknown): Promise<Date> {
    const attempts = row.attempts + 1;
    const delayMs = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** Math.min(attempts - 1, 30));
    const error = describe(err);
    const retryAt = new Date(this.clock.nowMs() + delayMs);
    await this.store.recordFailure(row.id, attempts, retryAt, error);
    // Never the payload: it may carry a reset link.
    this.logger.warn(
      { eventId: row.id, subject: row.subject, attempts, retryInMs: delayMs, err: error },
      'outbox relay: publish failed, will retry',
    );
    return retryAt;
  }

  private async release(rows: ClaimedEvent[], retryAt: Date): Promise<void> {
    await this.store.release(
      rows.map((r) => r.id),
      retryAt,
    );
  }
}

/** The error's class and message only: broker and driver errors do not contain event payloads. */
function describe(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}
