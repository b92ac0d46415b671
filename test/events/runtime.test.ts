import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordResetRequested, sessionsRevoked } from '../../src/identity/events/event-messages.js';
import { enqueue } from '../../src/identity/events/outbox-store.js';
import { securityAlert } from '../../src/identity/events/security-alert.js';
import { startEvents, type EventsRuntime } from '../../src/identity/events/runtime.js';
import { systemClock } from '../../src/shared/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { describeWithNats, services } from '../helpers/services.js';
import { capturingLogger, deleteStream, randomStream, streamMessages, waitFor } from './support.js';

const RESET_TOKEN = 'kq7-unique-reset-token-4471';

/** Commits a revocation, kicks the relay and waits for the bus; returns the delay in ms. */
async function revokeThroughOutbox(t: TestDatabase, events: EventsRuntime, userId: string): Promise<number> {
  const seen: string[] = [];
  events.bus.onRevoked((u) => seen.push(u));
  const started = Date.now();
  await t.db.orm.em.fork().transactional(async (tx) => enqueue(tx, sessionsRevoked({ userId, notBeforeMs: started }), systemClock));
  events.relay.kick();
  await waitFor(() => seen.includes(userId), 2_000, 2);
  return Date.now() - started;
}

describe('startEvents without NATS (in-process mode)', () => {
  let t: TestDatabase;
  let events: EventsRuntime;
  const log = capturingLogger('debug');

  beforeAll(async () => {
    t = await createTestDatabase();
    events = await startEvents(
      { NATS_URL: undefined, EVENTS_STREAM: 'IDENTITY_EVENTS', EVENTS_SUBJECT_PREFIX: 'identity.events' },
      { orm: t.db.orm, logger: log.logger, clock: systemClock },
    );
  });
  afterAll(async () => {
    await events?.stop();
    await t?.drop();
  });

  it('delivers a committed revocation to the local bus through the same relay', async () => {
    expect(events.nats).toBeUndefined();
    expect(events.bus.isLive()).toBe(true);
    expect(await revokeThroughOutbox(t, events, 'user-local')).toBeLessThan(1_000);
  });

  it('logs reset requests and alerts without the reset link', async () => {
    await t.db.orm.em.fork().transactional(async (tx) => {
      enqueue(tx, passwordResetRequested({ userId: 'user-r', email: 'r@example.com', resetUrl: `https://app.example/reset#${RESET_TOKEN}`, expiresAtMs: Date.now() + 60_000 }), systemClock);
      enqueue(tx, securityAlert({ userId: 'user-r', email: 'r@example.com', kind: 'password_reset', clientIp: '192.0.2.9', userAgent: 'ua', occurredAtMs: Date.now() }), systemClock);
    });
    events.relay.kick();
    await waitFor(() => log.lines().some((l) => l.event === 'security_alert'), 2_000);
    expect(log.lines().some((l) => l.event === 'password_reset_requested' && l.userId === 'user-r')).toBe(true);
    expect(log.text()).not.toContain(RESET_TOKEN);
    expect(log.text()).not.toContain('app.example');
  });
});

describeWithNats('startEvents with NATS (shared server, private stream)', () => {
  let t: TestDatabase;
  let events: EventsRuntime;
  const { streamName, subjectPrefix } = randomStream();

  beforeAll(async () => {
    t = await createTestDatabase();
    events = await startEvents(
      { NATS_URL: services().natsUrl!, EVENTS_STREAM: streamName, EVENTS_SUBJECT_PREFIX: subjectPrefix },
      { orm: t.db.orm, logger: capturingLogger().logger, clock: systemClock },
    );
  });
  afterAll(async () => {
    await events?.stop();
    await deleteStream(services().natsUrl!, streamName);
    await t?.drop();
  });

  it('carries a committed revocation through JetStream to the NATS bus within 1 s', async () => {
    expect(events.bus.isLive()).toBe(true);
    expect(await revokeThroughOutbox(t, events, 'user-nats')).toBeLessThan(1_000);
    const msgs = await streamMessages(events.nats!.nc, streamName);
    expect(msgs.map((m) => m.subject)).toEqual([`${subjectPrefix}.sessions_revoked`]);
  });

  it('stop() leaves the bus not live and the connection closed', async () => {
    await events.stop();
    expect(events.bus.isLive()).toBe(false);
    expect(events.nats!.nc.isClosed()).toBe(true);
  });
});
