import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SessionsRevokedSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { LatchAuth, type LatchPrincipal } from '../../src/sdk/index.js';
import { OwnNatsServer, waitFor } from '../events/support.js';
import { describeWithNats } from '../helpers/services.js';

const PREFIX = 'sdk_feed_test.events';

const principal = (userId: string, sessionId: string): LatchPrincipal => ({
  userId,
  email: '',
  role: 'user',
  scope: '',
  amr: ['pwd'],
  sessionId,
  clientId: 'latch',
  emailVerified: false,
  passwordMustChange: false,
  jti: 'j',
  issuedAtMs: 0,
  expiresAtMs: Date.now() + 3_600_000,
});

/** The SDK's revocation feed on a NATS server of its own, which the test stops and starts. */
describeWithNats('SDK revocation feed (own NATS server)', () => {
  let server: OwnNatsServer;
  let sdkConn: NatsConnection;
  let publisher: NatsConnection;
  let auth: LatchAuth;
  const calls: string[] = [];
  const answers: Record<string, LatchPrincipal> = { a1: principal('u1', 's1'), a2: principal('u1', 's2'), b1: principal('u2', 's3') };

  beforeAll(async () => {
    server = await OwnNatsServer.start();
    sdkConn = await connect({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    publisher = await connect({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    auth = await LatchAuth.create({
      introspection: { introspect: async (t) => (calls.push(t), answers[t] ?? null) },
      cache: { ttlMs: 600_000 },
      revocation: { connection: sdkConn, subjectPrefix: PREFIX },
    });
  });
  afterAll(async () => {
    await auth?.close();
    await sdkConn?.close();
    await publisher?.close();
    await server?.destroy();
  });

  const asked = async (token: string) => {
    const before = calls.length;
    await auth.verify(token);
    return calls.length > before;
  };
  const revoke = async (userId: string, sessionId = '') => {
    publisher.publish(`${PREFIX}.sessions_revoked`, toBinary(SessionsRevokedSchema, create(SessionsRevokedSchema, { eventId: 'e', userId, sessionId, notBefore: timestampFromMs(Date.now()) })));
    await publisher.flush();
  };

  it('a per-session revocation drops that session only; a user-wide one every session of the user', async () => {
    for (const t of ['a1', 'a2', 'b1']) await auth.verify(t);
    expect([await asked('a1'), await asked('a2'), await asked('b1')]).toEqual([false, false, false]);
    await revoke('u1', 's1');
    await waitFor(() => asked('a1'), 5_000, 5);
    expect([await asked('a2'), await asked('b1')]).toEqual([false, false]);
    await revoke('u1');
    await waitFor(() => asked('a2'), 5_000, 5);
    expect(await asked('b1')).toBe(false);
  });

  it('while NATS is away the cache is bypassed, and it is trusted again once the subscription is back', async () => {
    await auth.verify('b1');
    expect(await asked('b1')).toBe(false);
    await server.stop();
    // Revocations sent now would be lost, so every request asks Latch.
    await waitFor(() => asked('b1'), 10_000, 20);
    expect(await asked('b1')).toBe(true);
    await server.startAgain();
    await waitFor(async () => (await asked('b1'), !(await asked('b1'))), 20_000, 50);
    // And revocations arrive again (once the publisher's own connection is back too).
    await waitFor(() => revoke('u2').then(() => true, () => false), 20_000, 50);
    await waitFor(() => asked('b1'), 5_000, 5);
  });
});
