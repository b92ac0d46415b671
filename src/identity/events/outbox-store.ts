import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { OutboxEventInput } from './event-messages.js';
import { OutboxEntity } from './outbox.entity.js';

/**
 * Adds the event to the caller's unit of work; it is written when the caller's transaction
 * flushes and rolls back with it (E1: the state change and its event commit together).
 * Call it inside `em.transactional(...)` with the transaction's EntityManager.
 */
export function enqueue(em: EntityManager, event: OutboxEventInput, clock: Clock): string {
  const id = event.id ?? randomUUID();
  const now = new Date(clock.nowMs());
  const row = em.create(OutboxEntity, {
    id,
    subject: event.name,
    payload: Buffer.from(event.payload),
    createdAt: now,
    publishedAt: null,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
  });
  em.persist(row);
  return id;
}

export interface ClaimedEvent {
  id: string;
  subject: string;
  payload: Buffer;
  attempts: number;
}

/** The relay's side of the outbox: claiming due rows and recording how their publish went. */
export class OutboxStore {
  constructor(private readonly orm: MikroORM) {}

  /** Up to `limit` due rows, leased until `leaseUntil` so other relays leave them alone. */
  async claim(now: Date, limit: number, leaseUntil: Date): Promise<ClaimedEvent[]> {
    // Lock: `for update skip locked` in one statement, so the row locks live only as long as it
    // runs; the lease (next_attempt_at moved forward) keeps other relays off the rows afterwards.
    const result = await this.orm.em.fork().getKnex().raw<{ rows: ClaimedEvent[] }>(
      `with due as (
         select id from outbox
          where published_at is null and next_attempt_at <= ?
          order by next_attempt_at, seq
          limit ?
          for update skip locked
       ), claimed as (
         update outbox o set next_attempt_at = ?
           from due where o.id = due.id
         returning o.id, o.subject, o.payload, o.attempts, o.seq
       )
       select id, subject, payload, attempts from claimed order by seq`,
      [now, limit, leaseUntil],
    );
    return result.rows;
  }

  async markPublished(id: string, at: Date): Promise<void> {
    await this.orm.em.fork().nativeUpdate(OutboxEntity, { id }, { publishedAt: at, lastError: null });
  }

  async recordFailure(id: string, attempts: number, retryAt: Date, error: string): Promise<void> {
    await this.orm.em.fork().nativeUpdate(OutboxEntity, { id }, { attempts, nextAttemptAt: retryAt, lastError: error });
  }

  /** Gives unpublished rows back for a later attempt without counting one. */
  async release(ids: string[], retryAt: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.orm.em.fork().nativeUpdate(OutboxEntity, { id: { $in: ids }, publishedAt: null }, { nextAttemptAt: retryAt });
  }
}
