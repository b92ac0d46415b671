import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { mailConsumerName } from '../../src/mailer/consumer.js';
import { startMailer, type MailerApp } from '../../src/mailer/mailer.js';
import { EventName } from '../../src/shared/event-subjects.js';
import { capturingLogger, deleteStream, OwnNatsServer, randomStream, waitFor } from '../events/support.js';
import { signUp, startTestIdentity, uniqueEmail, type Clients, type TestIdentity } from '../helpers/identity.js';
import { describeWithNats, services } from '../helpers/services.js';
import { errorIdOf } from '../identity/second-factor-support.js';
import { mailerTestConfig, natsConnection, TestSmtpServer } from './support.js';

/**
 * A password reset as a user lives it, over gRPC and Connect: identity (real PostgreSQL) puts the
 * event in its outbox, the relay publishes it to JetStream, the mailer sends it to a real SMTP
 * server, and the link in the parsed mail is what resets the password.
 */

const NEW_PASSWORD = 'amber-lighthouse-softly-4417';

function recipient(m: ParsedMail): string {
  return m.to && !Array.isArray(m.to) ? m.to.text : '';
}

function resetMailsTo(smtp: TestSmtpServer, email: string): ParsedMail[] {
  return smtp.mails.filter((m) => m.subject === 'Reset your password' && recipient(m) === email);
}

function tokenOf(mail: ParsedMail): string {
  const link = /(https?:\/\/\S+[?&]token=\S+)/.exec(mail.text ?? '')?.[1];
  if (!link) throw new Error('no reset link in the mail');
  return new URL(link).searchParams.get('token')!;
}

/** The ERR_ id a call failed with; undefined when it succeeded. */
async function errorId(p: Promise<unknown>): Promise<string | null | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => errorIdOf(e),
  );
}

describeWithNats('password reset by mail: identity → JetStream → mailer → SMTP', () => {
  const natsUrl = services().natsUrl!;
  const stream = randomStream();
  let t: TestIdentity;
  let smtp: TestSmtpServer;
  let mailer: MailerApp;

  beforeAll(async () => {
    smtp = await TestSmtpServer.start();
    t = await startTestIdentity({
      nats: { url: natsUrl, ...stream },
      env: { PASSWORD_RESET_MAX_PER_EMAIL: '1', PASSWORD_RESET_MAX_PER_IP: '1000' },
    });
    mailer = await startMailer(
      mailerTestConfig({ NATS_URL: natsUrl, EVENTS_STREAM: stream.streamName, EVENTS_SUBJECT_PREFIX: stream.subjectPrefix, SMTP_URL: smtp.url }),
      { logger: capturingLogger('info').logger },
    );
  });

  afterAll(async () => {
    await mailer?.stop();
    await smtp?.close();
    await t?.stop();
    await deleteStream(natsUrl, stream.streamName).catch(() => undefined);
  });

  describe.each([
    ['gRPC', () => t.grpc],
    ['Connect', () => t.connect],
  ] as const)('over %s', (_, clients) => {
    let c: Clients;
    beforeAll(() => {
      c = clients();
    });

    it('the mailed link resets the password once; the old password stops working', async () => {
      const u = await signUp(c);
      await c.auth.requestPasswordReset({ email: u.email });
      await waitFor(() => resetMailsTo(smtp, u.email).length === 1, 20_000, 25);
      const token = tokenOf(resetMailsTo(smtp, u.email)[0]!);

      await c.auth.resetPassword({ resetToken: token, newPassword: NEW_PASSWORD });
      expect(await errorId(c.auth.login({ email: u.email, password: u.password }))).toBe('ERR_INVALID_CREDENTIALS');
      expect((await c.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
      expect(await errorId(c.auth.resetPassword({ resetToken: token, newPassword: 'another-quiet-meadow-2291' }))).toBe('ERR_RESET_TOKEN_USED');
      expect((await c.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
      // The reset mails its owner an alert through the same path; the token is not in it.
      await waitFor(() => smtp.mails.some((m) => m.subject === 'Your password was reset' && recipient(m) === u.email), 20_000, 25);
      expect(smtp.mails.filter((m) => recipient(m) === u.email && m.subject !== 'Reset your password').every((m) => !m.text?.includes(token))).toBe(true);
    });

    it('unknown, throttled and disabled emails get the same answer as an existing one, and no mail', async () => {
      const existing = await signUp(c);
      const disabled = await signUp(c);
      const throttled = await signUp(c);
      await t.app.internals.db.orm.em.fork().execute(`update users set disabled = true where email = ?`, [disabled.email]);
      await c.auth.requestPasswordReset({ email: throttled.email });
      await waitFor(() => resetMailsTo(smtp, throttled.email).length === 1, 20_000, 25);
      const unknown = uniqueEmail('nobody');

      const answers = [];
      for (const email of [existing.email, unknown, throttled.email, disabled.email]) answers.push(await c.auth.requestPasswordReset({ email }));
      for (const a of answers) expect(a).toEqual(answers[0]);

      // Mail leaves in request order: once a later request's mail is in, the earlier ones would be too.
      const sentinel = await signUp(c);
      await c.auth.requestPasswordReset({ email: sentinel.email });
      await waitFor(() => resetMailsTo(smtp, sentinel.email).length === 1 && resetMailsTo(smtp, existing.email).length === 1, 20_000, 25);
      expect(resetMailsTo(smtp, unknown)).toEqual([]);
      expect(resetMailsTo(smtp, disabled.email)).toEqual([]);
      expect(resetMailsTo(smtp, throttled.email)).toHaveLength(1);
      expect(smtp.mails.filter((m) => recipient(m) === unknown)).toEqual([]);
    });
  });
});

// Done-when: NATS stopped, reset requested, NATS started → exactly one mail. A private
// nats-server, so stopping it disturbs nobody.
describe('password reset across a NATS outage', () => {
  const stream = randomStream();
  let server: OwnNatsServer | undefined;
  let t: TestIdentity | undefined;
  let smtp: TestSmtpServer | undefined;
  let mailer: MailerApp | undefined;

  beforeAll(async () => {
    server = await OwnNatsServer.start();
    smtp = await TestSmtpServer.start();
    t = await startTestIdentity({ nats: { url: server.url, ...stream } });
    mailer = await startMailer(
      mailerTestConfig({ NATS_URL: server.url, EVENTS_STREAM: stream.streamName, EVENTS_SUBJECT_PREFIX: stream.subjectPrefix, SMTP_URL: smtp.url }),
      { logger: capturingLogger('info').logger },
    );
    await waitFor(() => mailer!.ready(), 15_000, 25);
  });

  afterAll(async () => {
    // Each step on its own: a failure in one must not leave the nats-server running.
    await mailer?.stop().catch(() => undefined);
    await t?.stop().catch(() => undefined);
    await smtp?.close().catch(() => undefined);
    await server?.destroy();
  });

  it('a reset requested while NATS is down is mailed exactly once after it returns', async () => {
    const u = await signUp(t!.connect);
    await server!.stop();
    await t!.connect.auth.requestPasswordReset({ email: u.email });

    const outbox = async () =>
      (await t!.app.internals.db.orm.em
        .fork()
        .execute(`select attempts, published_at from outbox where subject = 'password_reset_requested'`)) as Array<{ attempts: number; published_at: Date | null }>;
    await waitFor(async () => (await outbox()).some((r) => r.attempts >= 1), 20_000, 50);
    expect((await outbox()).every((r) => r.published_at === null)).toBe(true);
    expect(resetMailsTo(smtp!, u.email)).toEqual([]);

    await server!.startAgain();
    await waitFor(() => resetMailsTo(smtp!, u.email).length >= 1, 60_000, 50);
    await waitFor(async () => (await outbox()).every((r) => r.published_at !== null), 20_000, 50);
    // Settled: the relay marked the row, the stream holds one reset event and the mailer acked
    // every delivery of it; nothing more is coming.
    const nc = await natsConnection(server!.url);
    try {
      const jsm = await jetstreamManager(nc);
      const consumer = mailConsumerName('latch-mailer', EventName.passwordResetRequested);
      await waitFor(async () => {
        const info = await jsm.consumers.info(stream.streamName, consumer);
        return info.num_pending === 0 && info.num_ack_pending === 0 && info.num_redelivered === 0;
      }, 20_000, 50);
      const info = await jsm.consumers.info(stream.streamName, consumer);
      expect(info.delivered.stream_seq).toBeGreaterThan(0);
      const streamInfo = await jsm.streams.info(stream.streamName, { subjects_filter: `${stream.subjectPrefix}.${EventName.passwordResetRequested}` });
      expect(streamInfo.state.subjects?.[`${stream.subjectPrefix}.${EventName.passwordResetRequested}`]).toBe(1);
    } finally {
      await nc.close();
    }
    expect(resetMailsTo(smtp!, u.email)).toHaveLength(1);
    await t!.connect.auth.resetPassword({ resetToken: tokenOf(resetMailsTo(smtp!, u.email)[0]!), newPassword: NEW_PASSWORD });
    expect((await t!.connect.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
  });
});
