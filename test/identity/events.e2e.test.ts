import { fromBinary } from '@bufbuild/protobuf';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecurityAlertKind, SecurityAlertSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { OwnNatsServer, randomStream, streamMessages, waitFor } from '../events/support.js';
import { bearer, signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';

/** E1 and E3 through the whole service, with a broker of the test's own that it can stop. */
describe('security alerts reach JetStream, also across a NATS outage', () => {
  let nats: OwnNatsServer;
  let t: TestIdentity;
  const stream = randomStream();
  beforeAll(async () => {
    nats = await OwnNatsServer.start();
    t = await startTestIdentity({ nats: { url: nats.url, ...stream }, env: { REFRESH_GRACE_SECONDS: '0' } });
  });
  afterAll(async () => {
    await t?.stop();
    await nats?.destroy();
  });

  async function alertsInStream() {
    const nc = await connect({ servers: nats.url, reconnect: false });
    try {
      return (await streamMessages(nc, stream.streamName))
        .filter((m) => m.subject === `${stream.subjectPrefix}.security_alert`)
        .map((m) => ({ msgId: m.header?.get('Nats-Msg-Id'), alert: fromBinary(SecurityAlertSchema, m.data) }));
    } finally {
      await nc.close();
    }
  }

  it('E1: an alert raised while NATS is down is published exactly once after it returns', async () => {
    const u = await signUp(t.grpc);
    await t.grpc.auth.refresh({ refreshToken: u.session.refreshToken });
    await nats.stop();
    const em = t.app.internals.db.orm.em.fork();
    try {
      // Reuse outside the (zero) grace window: the family is revoked and the alert goes to the outbox.
      await t.grpc.auth.refresh({ refreshToken: u.session.refreshToken }).catch(() => undefined);
      const pending = await em.execute(`select id from outbox where published_at is null and subject = 'security_alert'`);
      expect(pending).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 1_500)); // the relay retries meanwhile
    } finally {
      // The broker is shared by the tests after this one: bring it back even when an assertion failed.
      await nats.startAgain();
    }
    await waitFor(async () => (await em.execute(`select 1 from outbox where published_at is null`)).length === 0, 20_000, 100);
    const alerts = (await alertsInStream()).filter((a) => a.alert.userId === u.session.user!.id);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.alert.kind).toBe(SecurityAlertKind.REFRESH_TOKEN_REUSE);
    expect(alerts[0]!.msgId).toBe(alerts[0]!.alert.eventId);
  });

  it('E3: no password, refresh token or access token in events or logs', async () => {
    const u = await signUp(t.grpc);
    const next = await t.grpc.auth.refresh({ refreshToken: u.session.refreshToken });
    const changed = await t.grpc.auth.changePassword({ currentPassword: u.password, newPassword: 'pale-comet-returns-4471' }, bearer(next.session!.accessToken));
    await t.grpc.auth.login({ email: u.email, password: 'wrong-password-attempt-000' }).catch(() => undefined);
    await waitFor(async () => (await alertsInStream()).some((a) => a.alert.userId === u.session.user!.id), 10_000, 50);
    const nc = await connect({ servers: nats.url, reconnect: false });
    const everything = (await streamMessages(nc, stream.streamName)).map((m) => Buffer.from(m.data).toString('latin1')).join('\n');
    await nc.close();
    const secrets = [u.password, 'pale-comet-returns-4471', 'wrong-password-attempt-000', u.session.refreshToken, next.session!.refreshToken, u.session.accessToken, changed.session!.refreshToken];
    for (const s of secrets) {
      expect(everything).not.toContain(s);
      expect(t.logs()).not.toContain(s);
    }
    expect(t.logs()).not.toContain(t.introspectionSecret);
  });

  it('starts while NATS is down and delivers what waited once it is up', async () => {
    const broker = await OwnNatsServer.start();
    const own = randomStream();
    await broker.stop();
    const started = Date.now();
    const u = await startTestIdentity({ nats: { url: broker.url, ...own }, env: { REFRESH_GRACE_SECONDS: '0' } });
    try {
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(u.app.internals.events.bus.isLive()).toBe(false);
      // Sign-in works without the broker; the reuse alert waits in the outbox.
      const user = await signUp(u.grpc);
      await u.grpc.auth.refresh({ refreshToken: user.session.refreshToken });
      await u.grpc.auth.refresh({ refreshToken: user.session.refreshToken }).catch(() => undefined);
      await broker.startAgain();
      await waitFor(() => u.app.internals.events.bus.isLive(), 20_000, 100);
      const em = u.app.internals.db.orm.em.fork();
      await waitFor(async () => (await em.execute(`select 1 from outbox where published_at is null`)).length === 0, 20_000, 100);
      const nc = await connect({ servers: broker.url, reconnect: false });
      const alerts = (await streamMessages(nc, own.streamName)).filter((m) => m.subject === `${own.subjectPrefix}.security_alert`);
      await nc.close();
      expect(alerts.map((m) => fromBinary(SecurityAlertSchema, m.data).userId)).toEqual([user.session.user!.id]);
    } finally {
      await u.stop();
      await broker.destroy();
    }
  }, 60_000);
});

