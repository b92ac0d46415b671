import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MikroORM } from '@mikro-orm/postgresql';
import { connectEvents, type EventsConnection } from '../../src/identity/events/nats.js';
import { OutboxEntity } from '../../src/identity/events/outbox.entity.js';
import type { BuiltEvent } from '../../src/identity/events/event-messages.js';
import { enqueue } from '../../src/identity/events/outbox-store.js';
import { securityAlert } from '../../src/identity/events/security-alert.js';
import { OutboxRelay, type EventPublisher } from '../../src/identity/events/relay.js';
import { identityEntities } from '../../src/identity/app.js';
import { openDatabase } from '../../src/identity/persistence/database.js';
import { systemClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { describeWithNats, services } from '../helpers/services.js';
import { deleteStream, randomStream, streamMessages, waitFor } from './support.js';

const alert = (userId = 'u-1'): BuiltEvent =>
  securityAlert({ userId, email: `${userId}@example.com`, kind: 'refresh_token_reuse', clientIp: '192.0.2.1', userAgent: 'ua', occurredAtMs: Date.now() });

async function commit(orm: MikroORM, events: BuiltEvent[]): Promise<void> {
  await orm.em.fork().transactional(async (tx) => {
    for (const e of events) enqueue(tx, e, systemClock);
  });
}

async function clearOutbox(orm: MikroORM): Promise<void> {
  await orm.em.fork().getKnex().raw('delete from outbox');
}

/** Counts publishes per id, so a test can tell "stored once" from "sent once". */
function counting(inner: EventPublisher, delayMs = 0): EventPublisher & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  return {
    calls,
    async publish(subject, payload, msgId) {
      calls.set(msgId, (calls.get(msgId) ?? 0) + 1);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      await inner.publish(subject, payload, msgId);
    },
  };
}

describeWithNats('OutboxRelay → JetStream (shared NATS, private stream)', () => {
  let t: TestDatabase;
  let events: EventsConnection;
  const { streamName, subjectPrefix } = randomStream();

  beforeAll(async () => {
    t = await createTestDatabase();
    events = await connectEvents({ url: services().natsUrl!, logger: silentLogger, streamName, subjectPrefix });
    await events.ensureStream();
  });
  afterAll(async () => {
    await events?.close();
    await deleteStream(services().natsUrl!, streamName);
    await t?.drop();
  });

  it('publishes with Nats-Msg-Id = outbox id and marks the row published; a re-publish stores nothing', async () => {
    const before = (await streamMessages(events.nc, streamName)).length;
    const e = alert();
    await commit(t.db.orm, [e]);
    const relay = new OutboxRelay({ orm: t.db.orm, publisher: events.publisher, logger: silentLogger, clock: systemClock, subjectPrefix });
    expect(await relay.runOnce()).toEqual({ claimed: 1, published: 1, failed: 0 });

    let msgs = (await streamMessages(events.nc, streamName)).slice(before);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.subject).toBe(`${subjectPrefix}.security_alert`);
    expect(msgs[0]!.header.get('Nats-Msg-Id')).toBe(e.id);
    expect(msgs[0]!.data).toEqual(e.payload);
    const row = await t.db.orm.em.fork().findOneOrFail(OutboxEntity, { id: e.id });
    expect(row.publishedAt).not.toBeNull();
    expect(await relay.runOnce()).toEqual({ claimed: 0, published: 0, failed: 0 });

    // Same id again, directly and through the relay after "losing" the published mark.
    await events.publisher.publish(`${subjectPrefix}.security_alert`, e.payload, e.id);
    await t.db.orm.em.fork().getKnex().raw(`update outbox set published_at = null, next_attempt_at = now() - interval '1 second' where id = ?`, [e.id]);
    expect(await relay.runOnce()).toMatchObject({ published: 1 });
    msgs = (await streamMessages(events.nc, streamName)).slice(before);
    expect(msgs).toHaveLength(1);
  });

  it('kick() sends a fresh event long before the next poll', async () => {
    await clearOutbox(t.db.orm);
    const relay = new OutboxRelay({ orm: t.db.orm, publisher: events.publisher, logger: silentLogger, clock: systemClock, subjectPrefix, pollIntervalMs: 60_000 });
    relay.start();
    try {
      await new Promise((r) => setTimeout(r, 100)); // let the first (empty) round run and go to sleep
      const e = alert();
      await commit(t.db.orm, [e]);
      const started = Date.now();
      relay.kick();
      await waitFor(async () => (await t.db.orm.em.fork().findOneOrFail(OutboxEntity, { id: e.id })).publishedAt !== null, 2_000, 5);
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await relay.stop();
    }
  });

  it('stop() finishes the batch in flight', async () => {
    await clearOutbox(t.db.orm);
    const batch = Array.from({ length: 5 }, (_, i) => alert(`stop-${i}`));
    await commit(t.db.orm, batch);
    const slow = counting(events.publisher, 40);
    const relay = new OutboxRelay({ orm: t.db.orm, publisher: slow, logger: silentLogger, clock: systemClock, subjectPrefix });
    relay.start();
    await waitFor(() => slow.calls.size > 0, 2_000, 2);
    await relay.stop();
    const pending = await t.db.orm.em.fork().count(OutboxEntity, { publishedAt: null });
    expect(pending).toBe(0);
    expect(slow.calls.size).toBe(5);
  });

  it('two relays on one database: every event is sent once and stored once', async () => {
    await clearOutbox(t.db.orm);
    const second = await openDatabase({ databaseUrl: t.url, dataDir: '/nonexistent', poolMax: 4, logger: silentLogger, entities: identityEntities });
    const before = (await streamMessages(events.nc, streamName)).length;
    const batch = Array.from({ length: 60 }, (_, i) => alert(`pair-${i}`));
    const a = counting(events.publisher, 2);
    const b = counting(events.publisher, 2);
    const relays = [
      new OutboxRelay({ orm: t.db.orm, publisher: a, logger: silentLogger, clock: systemClock, subjectPrefix, batchSize: 7, pollIntervalMs: 20 }),
      new OutboxRelay({ orm: second.orm, publisher: b, logger: silentLogger, clock: systemClock, subjectPrefix, batchSize: 7, pollIntervalMs: 20 }),
    ];
    try {
      // Commit in several transactions while both relays run, so they compete for fresh rows.
      relays.forEach((r) => r.start());
      for (let i = 0; i < batch.length; i += 10) {
        await commit(i % 20 === 0 ? t.db.orm : second.orm, batch.slice(i, i + 10));
        relays.forEach((r) => r.kick());
      }
      await waitFor(async () => (await t.db.orm.em.fork().count(OutboxEntity, { publishedAt: null })) === 0, 10_000);
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
      await second.close();
    }
    const sends = batch.map((e) => (a.calls.get(e.id) ?? 0) + (b.calls.get(e.id) ?? 0));
    expect(sends.every((n) => n === 1)).toBe(true);
    // Both relays took part (otherwise the test says nothing about skip locked).
    expect(a.calls.size).toBeGreaterThan(0);
    expect(b.calls.size).toBeGreaterThan(0);

    const msgs = (await streamMessages(events.nc, streamName)).slice(before);
    expect(msgs.map((m) => m.header.get('Nats-Msg-Id')).sort()).toEqual(batch.map((e) => e.id).sort());
  });
});
