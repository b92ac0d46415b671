import { describe, expect, it } from 'vitest';
import { capturingLogger } from '../../../test/events/support.js';
import { LocalEventPublisher } from './local-publisher.js';
import { passwordResetRequested, sessionsRevoked } from './event-messages.js';
import { securityAlert } from './security-alert.js';
import { LocalRevocationBus } from './revocation-bus.js';
import { subjectFor } from './subjects.js';

const RESET_TOKEN = 'rT0k3n-3q8Zp1XwYvN4mK2LhG7sD9fA';
const RESET_URL = `https://latch.example/reset?token=${RESET_TOKEN}`;

describe('LocalEventPublisher (in-process mode)', () => {
  it('logs a reset request without the link or its token (E3)', async () => {
    const log = capturingLogger('trace');
    const publisher = new LocalEventPublisher({ logger: log.logger });
    const e = passwordResetRequested({ userId: 'user-7', email: 'ada@example.com', resetUrl: RESET_URL, expiresAtMs: Date.now() + 900_000 });
    await publisher.publish(subjectFor(e.name), e.payload, e.id);

    const text = log.text();
    expect(log.lines()).toHaveLength(1);
    expect(log.lines()[0]).toMatchObject({ level: 30, userId: 'user-7', event: 'password_reset_requested', eventId: e.id });
    expect(text).toContain('a reset mail would be sent');
    expect(text).not.toContain(RESET_TOKEN);
    expect(text).not.toContain('reset?token');
    expect(text).not.toContain('latch.example');
  });

  it('logs a security alert by kind and user', async () => {
    const log = capturingLogger('trace');
    const publisher = new LocalEventPublisher({ logger: log.logger });
    const e = securityAlert({ userId: 'user-8', email: 'b@example.com', kind: 'password_changed', clientIp: '198.51.100.1', userAgent: 'ua', occurredAtMs: 1 });
    await publisher.publish(subjectFor(e.name), e.payload, e.id);
    expect(log.lines()[0]).toMatchObject({ userId: 'user-8', kind: 'PASSWORD_CHANGED', event: 'security_alert' });
  });

  it('feeds sessions_revoked to the local revocation bus', async () => {
    const bus = new LocalRevocationBus();
    const seen: [string, number][] = [];
    bus.onRevoked((u, t) => seen.push([u, t]));
    const publisher = new LocalEventPublisher({ logger: capturingLogger().logger, revocationBus: bus });
    const e = sessionsRevoked({ userId: 'user-9', notBeforeMs: 1_700_000_000_000 });
    await publisher.publish(subjectFor(e.name), e.payload, e.id);
    expect(seen).toEqual([['user-9', 1_700_000_000_000]]);
    expect(bus.isLive()).toBe(true);
  });

  it('passes the ended session on to the local revocation bus', async () => {
    const bus = new LocalRevocationBus();
    const seen: [string, number, string | undefined][] = [];
    bus.onRevoked((u, t, sid) => seen.push([u, t, sid]));
    const publisher = new LocalEventPublisher({ logger: capturingLogger().logger, revocationBus: bus });
    for (const e of [sessionsRevoked({ userId: 'user-9', sessionId: 'sess-1', notBeforeMs: 5 }), sessionsRevoked({ userId: 'user-9', notBeforeMs: 6 })]) {
      await publisher.publish(subjectFor(e.name), e.payload, e.id);
    }
    expect(seen).toEqual([['user-9', 5, 'sess-1'], ['user-9', 6, undefined]]);
  });

  it('rejects an unknown subject or undecodable payload so the row stays in the outbox', async () => {
    const publisher = new LocalEventPublisher({ logger: capturingLogger().logger });
    await expect(publisher.publish('identity.events.nope', new Uint8Array(), 'x')).rejects.toMatchObject({ id: 'ERR_EVENT_UNKNOWN' });
    await expect(publisher.publish(subjectFor('sessions_revoked'), new Uint8Array([0xff, 0xff, 0xff]), 'y')).rejects.toMatchObject({
      id: 'ERR_EVENT_UNDECODABLE',
    });
  });
});
