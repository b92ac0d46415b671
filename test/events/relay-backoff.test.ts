import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxEntity } from '../../src/identity/events/outbox.entity.js';
import { passwordResetRequested } from '../../src/identity/events/event-messages.js';
import { enqueue } from '../../src/identity/events/outbox-store.js';
import { OutboxRelay, type EventPublisher } from '../../src/identity/events/relay.js';
import { ManualClock } from '../../src/shared/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { capturingLogger } from './support.js';

const TOKEN = 'Zq4v-reset-token-9f8e7d6c5b4a3210';

/** Fails while `down` is set, like a broker that is away. */
function flakyPublisher(): EventPublisher & { down: boolean; sent: string[] } {
  return {
    down: true,
    sent: [],
    async publish(_subject, _payload, msgId) {
      if (this.down) throw new Error('connection refused');
      this.sent.push(msgId);
    },
  };
}

describe('OutboxRelay retries with capped exponential backoff', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('keeps failed rows pending, backs off, records the error without the payload, then delivers', async () => {
    const clock = new ManualClock(Date.parse('2031-05-06T07:00:00.000Z'));
    const log = capturingLogger('debug');
    const publisher = flakyPublisher();
    const relay = new OutboxRelay({ orm: t.db.orm, publisher, logger: log.logger, clock, baseBackoffMs: 1_000, maxBackoffMs: 4_000 });
    const events = [0, 1, 2].map((i) =>
      passwordResetRequested({ userId: `u-${i}`, email: `u${i}@example.com`, resetUrl: `https://x.example/reset?token=${TOKEN}${i}`, expiresAtMs: clock.nowMs() + 900_000 }),
    );
    await t.db.orm.em.fork().transactional(async (tx) => {
      for (const e of events) {
        enqueue(tx, e, clock);
        clock.advance(1); // distinct created_at: publishing order is creation order
      }
    });
    const row = (id: string) => t.db.orm.em.fork().findOneOrFail(OutboxEntity, { id });

    // Attempt 1 fails: the head row counts it, the rest of the batch waits with it unattempted.
    expect(await relay.runOnce()).toEqual({ claimed: 3, published: 0, failed: 1 });
    const head = await row(events[0]!.id);
    expect(head.attempts).toBe(1);
    expect(head.publishedAt).toBeNull();
    expect(head.lastError).toBe('Error: connection refused');
    expect(head.nextAttemptAt.getTime()).toBe(clock.nowMs() + 1_000);
    expect((await row(events[1]!.id)).attempts).toBe(0);
    expect((await row(events[2]!.id)).nextAttemptAt.getTime()).toBe(clock.nowMs() + 1_000);

    // Not due yet.
    clock.advance(999);
    expect(await relay.runOnce()).toEqual({ claimed: 0, published: 0, failed: 0 });

    // 1 s, 2 s, 4 s, then capped at 4 s.
    const delays: number[] = [];
    for (let attempt = 2; attempt <= 5; attempt++) {
      clock.advance((await row(events[0]!.id)).nextAttemptAt.getTime() - clock.nowMs());
      expect(await relay.runOnce()).toMatchObject({ failed: 1 });
      const r = await row(events[0]!.id);
      expect(r.attempts).toBe(attempt);
      delays.push(r.nextAttemptAt.getTime() - clock.nowMs());
    }
    expect(delays).toEqual([2_000, 4_000, 4_000, 4_000]);

    // Broker back: everything goes, in creation order, and the error is cleared.
    publisher.down = false;
    clock.advance(4_000);
    expect(await relay.runOnce()).toEqual({ claimed: 3, published: 3, failed: 0 });
    expect(publisher.sent).toEqual(events.map((e) => e.id));
    const done = await row(events[0]!.id);
    expect(done.publishedAt).not.toBeNull();
    expect(done.lastError).toBeNull();

    const warnings = log.lines().filter((l) => l.level === 40);
    expect(warnings).toHaveLength(5);
    expect(warnings[0]).toMatchObject({ eventId: events[0]!.id, subject: 'password_reset_requested', attempts: 1 });
    expect(log.text()).not.toContain(TOKEN);
    expect(log.text()).not.toContain('x.example');
  });
});
