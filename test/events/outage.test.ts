import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEvents, type EventsConnection } from '../../src/identity/events/nats.js';
import { OutboxEntity } from '../../src/identity/events/outbox.entity.js';
import { passwordResetRequested } from '../../src/identity/events/event-messages.js';
import { enqueue } from '../../src/identity/events/outbox-store.js';
import { OutboxRelay } from '../../src/identity/events/relay.js';
import { systemClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { OwnNatsServer, randomStream, streamMessages, waitFor } from './support.js';

// E1: stop NATS, request a reset, start NATS → exactly one message. Runs against a private
// nats-server so stopping it disturbs nobody.
describe('outbox relay across a NATS outage (E1)', () => {
  let t: TestDatabase;
  let server: OwnNatsServer;
  let events: EventsConnection;
  const { streamName, subjectPrefix } = randomStream();

  beforeAll(async () => {
    t = await createTestDatabase();
    server = await OwnNatsServer.start();
    events = await connectEvents({ url: server.url, logger: silentLogger, streamName, subjectPrefix, reconnectTimeWaitMs: 100, publishTimeoutMs: 500 });
    await events.ensureStream();
  });
  afterAll(async () => {
    await events?.close();
    await server?.destroy();
    await t?.drop();
  });

  it('retries while the broker is away and stores the event exactly once when it returns', async () => {
    const relay = new OutboxRelay({
      orm: t.db.orm,
      publisher: events.publisher,
      logger: silentLogger,
      clock: systemClock,
      subjectPrefix,
      pollIntervalMs: 50,
      baseBackoffMs: 100,
      maxBackoffMs: 400,
    });
    relay.start();
    try {
      await server.stop();
      const e = passwordResetRequested({ userId: 'u-1', email: 'a@example.com', resetUrl: 'https://x.example/reset?token=t', expiresAtMs: Date.now() + 900_000 });
      await t.db.orm.em.fork().transactional(async (tx) => enqueue(tx, e, systemClock));
      relay.kick();

      const row = () => t.db.orm.em.fork().findOneOrFail(OutboxEntity, { id: e.id });
      await waitFor(async () => (await row()).attempts >= 3, 15_000, 50);
      const pending = await row();
      expect(pending.publishedAt).toBeNull();
      expect(pending.lastError).toBeTruthy();

      await server.startAgain();
      await waitFor(async () => (await row()).publishedAt !== null, 15_000, 50);

      const msgs = await streamMessages(events.nc, streamName);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.header.get('Nats-Msg-Id')).toBe(e.id);
      expect(msgs[0]!.subject).toBe(`${subjectPrefix}.password_reset_requested`);
    } finally {
      // Whatever failed above, the broker is back for what runs after this test.
      await server.startAgain();
      await relay.stop();
    }
  });
});
