import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxEntity } from '../../src/identity/events/outbox.entity.js';
import { sessionsRevoked } from '../../src/identity/events/event-messages.js';
import { enqueue, OutboxStore } from '../../src/identity/events/outbox-store.js';
import { securityAlert } from '../../src/identity/events/security-alert.js';
import { ManualClock } from '../../src/shared/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

describe('outbox enqueue (E1: the event commits with the change)', () => {
  let t: TestDatabase;
  const clock = new ManualClock(Date.parse('2030-01-02T03:04:05.000Z'));

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.drop();
  });

  const alert = () =>
    securityAlert({ userId: 'u-1', email: 'a@example.com', kind: 'password_changed', clientIp: '192.0.2.1', userAgent: 'ua', occurredAtMs: clock.nowMs() });

  it('leaves no row when the transaction fails, even after a flush', async () => {
    const e = alert();
    await expect(
      t.db.orm.em.fork().transactional(async (tx) => {
        enqueue(tx, e, clock);
        await tx.flush();
        throw new Error('state change failed');
      }),
    ).rejects.toThrow('state change failed');
    expect(await t.db.orm.em.fork().count(OutboxEntity, { id: e.id })).toBe(0);
  });

  it('writes a pending row when the transaction commits', async () => {
    const e = sessionsRevoked({ userId: 'u-2', notBeforeMs: clock.nowMs() });
    const id = await t.db.orm.em.fork().transactional(async (tx) => enqueue(tx, e, clock));
    expect(id).toBe(e.id);

    const row = await t.db.orm.em.fork().findOneOrFail(OutboxEntity, { id });
    expect(row.subject).toBe('sessions_revoked');
    expect(new Uint8Array(row.payload)).toEqual(e.payload);
    expect(row.publishedAt).toBeNull();
    expect(row.attempts).toBe(0);
    expect(row.createdAt.getTime()).toBe(clock.nowMs());
    expect(row.nextAttemptAt.getTime()).toBe(clock.nowMs());
  });

  it('hands events to the relay in the order they were written, within one millisecond too', async () => {
    // One transaction, one clock reading: created_at ties for all of them, so only the insert
    // order can tell them apart (a random-id tie-break gets 20 in order once in 20! runs).
    const events = Array.from({ length: 20 }, (_, i) => sessionsRevoked({ userId: `u-order-${i}`, notBeforeMs: clock.nowMs() }));
    await t.db.orm.em.fork().transactional(async (tx) => {
      for (const e of events) enqueue(tx, e, clock);
    });
    const ours = new Set(events.map((e) => e.id));
    const claimed = await new OutboxStore(t.db.orm).claim(new Date(clock.nowMs()), 100, new Date(clock.nowMs() + 60_000));
    expect(claimed.map((r) => r.id).filter((id) => ours.has(id))).toEqual(events.map((e) => e.id));
  });
});
