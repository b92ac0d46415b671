import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEvents, type EventsConnection } from '../../src/identity/events/nats.js';
import { sessionsRevoked } from '../../src/identity/events/event-messages.js';
import { NatsRevocationBus } from '../../src/identity/events/revocation-bus.js';
import { subjectFor } from '../../src/identity/events/subjects.js';
import { silentLogger } from '../../src/shared/logger.js';
import { OwnNatsServer, randomStream, waitFor } from './support.js';

// I4: a revocation published by one replica reaches another replica's bus within the bound; the
// bus reports itself not live while the broker is away, so caches read through.
describe('NatsRevocationBus', () => {
  let server: OwnNatsServer;
  let sender: EventsConnection;
  let receiver: EventsConnection;
  let bus: NatsRevocationBus;
  const { streamName, subjectPrefix } = randomStream();
  const seen: { userId: string; notBeforeMs: number; sessionId?: string; at: number }[] = [];
  const liveChanges: boolean[] = [];

  beforeAll(async () => {
    server = await OwnNatsServer.start();
    const opts = { url: server.url, logger: silentLogger, streamName, subjectPrefix, reconnectTimeWaitMs: 100, publishTimeoutMs: 1_000 };
    sender = await connectEvents(opts);
    receiver = await connectEvents(opts);
    await sender.ensureStream();
    bus = await NatsRevocationBus.subscribe({ nc: receiver.nc, logger: silentLogger, subjectPrefix });
    bus.onRevoked((userId, notBeforeMs, sessionId) => seen.push({ userId, notBeforeMs, sessionId, at: Date.now() }));
    bus.onLiveChange((live) => liveChanges.push(live));
  });
  afterAll(async () => {
    await bus?.close();
    await sender?.close();
    await receiver?.close();
    await server?.destroy();
  });

  async function revoke(userId: string, notBeforeMs: number, sessionId?: string): Promise<number> {
    const e = sessionsRevoked({ userId, notBeforeMs, sessionId });
    const sentAt = Date.now();
    await sender.publisher.publish(subjectFor(e.name, subjectPrefix), e.payload, e.id);
    return sentAt;
  }

  it('delivers a revocation published on another connection within 1 s', async () => {
    expect(bus.isLive()).toBe(true);
    const sentAt = await revoke('user-a', 1_700_000_000_000);
    await waitFor(() => seen.some((s) => s.userId === 'user-a'), 1_000, 2);
    const hit = seen.find((s) => s.userId === 'user-a')!;
    expect(hit.notBeforeMs).toBe(1_700_000_000_000);
    expect(hit.at - sentAt).toBeLessThan(1_000);
    expect(hit.sessionId).toBeUndefined();
  });

  it('R8: passes the ended session on to listeners', async () => {
    await revoke('user-s', 1_700_000_000_100, 'session-1');
    await waitFor(() => seen.some((s) => s.userId === 'user-s'), 1_000, 2);
    expect(seen.find((s) => s.userId === 'user-s')).toMatchObject({ notBeforeMs: 1_700_000_000_100, sessionId: 'session-1' });
  });

  it('is not live while the server is down and live again, and delivering, after it returns', async () => {
    await server.stop();
    try {
      await waitFor(() => !bus.isLive(), 2_000, 5);
      expect(liveChanges).toEqual([false]);
    } finally {
      await server.startAgain();
    }
    await waitFor(() => bus.isLive(), 10_000, 20);
    expect(liveChanges).toEqual([false, true]);

    // The subscription survived the reconnect; the sender reconnects on its own schedule, so its
    // first publishes may time out.
    await waitFor(async () => {
      try {
        await revoke('user-b', 1_700_000_000_500);
        return true;
      } catch {
        return false;
      }
    }, 10_000, 100);
    await waitFor(() => seen.some((s) => s.userId === 'user-b'), 1_000, 2);
  });

  it('is not live after close()', async () => {
    await bus.close();
    expect(bus.isLive()).toBe(false);
  });
});
