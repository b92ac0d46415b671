import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { SecurityAlertKind } from '../../src/gen/identity/events/v1/events_pb.js';
import { EventName, mailDeadLetterSubject } from '../../src/shared/event-subjects.js';
import { mailConsumerName } from '../../src/mailer/consumer.js';
import { startMailer, type MailerApp } from '../../src/mailer/mailer.js';
import { capturingLogger, deleteStream, randomStream, streamMessages, waitFor } from '../events/support.js';
import { describeWithNats, services } from '../helpers/services.js';
import {
  createStream,
  mailerTestConfig,
  metricValue,
  natsConnection,
  passwordResetPayload,
  publishEvent,
  securityAlertPayload,
  TestSmtpServer,
} from './support.js';

describeWithNats('mailer: JetStream events to SMTP', () => {
  const natsUrl = services().natsUrl!;
  const streams: string[] = [];
  let streamName: string;
  let subjectPrefix: string;
  let nc: NatsConnection;
  let smtp: TestSmtpServer;
  let mailer: MailerApp | undefined;
  let log: ReturnType<typeof capturingLogger>;

  beforeAll(async () => {
    nc = await natsConnection(natsUrl);
  });

  afterAll(async () => {
    await nc?.close();
    for (const name of streams) await deleteStream(natsUrl, name);
  });

  afterEach(async () => {
    await mailer?.stop();
    mailer = undefined;
    await smtp?.close();
  });

  /** A fresh stream, SMTP server and mailer, so no test sees another's events. */
  async function start(overrides: Record<string, string> = {}): Promise<{ consumer: string }> {
    ({ streamName, subjectPrefix } = randomStream());
    streams.push(streamName);
    await createStream(nc, streamName, subjectPrefix);
    smtp = await TestSmtpServer.start();
    log = capturingLogger('debug');
    const consumer = `mailer-test-${randomUUID().slice(0, 8)}`;
    mailer = await startMailer(
      mailerTestConfig({
        NATS_URL: natsUrl,
        EVENTS_STREAM: streamName,
        EVENTS_SUBJECT_PREFIX: subjectPrefix,
        SMTP_URL: smtp.url,
        MAILER_CONSUMER_NAME: consumer,
        ...overrides,
      }),
      { logger: log.logger },
    );
    await waitFor(() => mailer!.ready());
    return { consumer };
  }

  async function metrics(): Promise<string> {
    return mailer!.metrics.registry.metrics();
  }

  function mailsFor(eventId: string) {
    return smtp.mails.filter((m) => m.headers.get('x-latch-event-id') === eventId);
  }

  it('mails a security alert once, with what happened, when, from where and what to do (text and escaped HTML)', async () => {
    await start();
    const eventId = randomUUID();
    await publishEvent(
      nc,
      subjectPrefix,
      EventName.securityAlert,
      securityAlertPayload(eventId, { kind: SecurityAlertKind.TOTP_DISABLED, userAgent: '<script>alert(1)</script>' }),
      eventId,
    );
    await waitFor(() => mailsFor(eventId).length === 1);
    const mail = mailsFor(eventId)[0]!;
    expect(mail.subject).toBe('Two-step verification was turned off');
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.text : '').toBe('ada@example.com');
    expect(mail.from?.text).toContain('no-reply@latch.test');
    expect(mail.text).toContain('Two-step verification was turned off for your account');
    expect(mail.text).toContain('2026-11-27 20:15 UTC');
    expect(mail.text).toContain('203.0.113.7');
    expect(mail.text).toContain('If this was not you, change your password now');
    expect(mail.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(mail.html).not.toContain('<script>');
    expect(metricValue(await metrics(), 'latch_mailer_sent_total', { event: 'security_alert' })).toBe(1);
  });

  it('mails a reset link with its expiry, and keeps the link out of every log line', async () => {
    await start();
    const eventId = randomUUID();
    const secret = `secret-${randomUUID()}`;
    const url = `https://app.example.com/reset?token=${secret}`;
    await publishEvent(nc, subjectPrefix, EventName.passwordResetRequested, passwordResetPayload(eventId, url, Date.UTC(2099, 0, 1, 12, 30)), eventId);
    await waitFor(() => mailsFor(eventId).length === 1);
    const mail = mailsFor(eventId)[0]!;
    expect(mail.subject).toBe('Reset your password');
    expect(mail.text).toContain(url);
    expect(mail.text).toContain('2099-01-01 12:30 UTC');
    expect(mail.html).toContain(`href="${url}"`);
    await mailer!.stop();
    expect(log.text()).toContain(eventId);
    expect(log.text()).not.toContain(secret);
    expect(await metrics()).not.toContain(secret);
  });

  it('E2: an event delivered again under another message id (a re-publish) is not mailed twice', async () => {
    await start();
    const eventId = randomUUID();
    const payload = securityAlertPayload(eventId);
    await publishEvent(nc, subjectPrefix, EventName.securityAlert, payload, eventId);
    await waitFor(() => mailsFor(eventId).length === 1);
    // What a relay re-publish after the stream's duplicate window looks like: same event, new message.
    await publishEvent(nc, subjectPrefix, EventName.securityAlert, payload, `${eventId}-again`);
    await waitFor(async () => metricValue(await metrics(), 'latch_mailer_skipped_total', { reason: 'duplicate' }) === 1);
    expect(mailsFor(eventId)).toHaveLength(1);
    expect(smtp.attempts).toBe(1);
  });

  it('retries a temporary SMTP failure (4xx) with backoff and delivers the mail once', async () => {
    await start();
    smtp.answer = (attempt) => (attempt <= 2 ? { code: 451, message: 'try again later' } : 'accept');
    const eventId = randomUUID();
    await publishEvent(nc, subjectPrefix, EventName.securityAlert, securityAlertPayload(eventId), eventId);
    await waitFor(() => mailsFor(eventId).length === 1, 10_000);
    expect(smtp.attempts).toBe(3);
    const text = await metrics();
    expect(metricValue(text, 'latch_mailer_send_failures_total', { class: 'temporary' })).toBe(2);
    expect(metricValue(text, 'latch_mailer_sent_total')).toBe(1);
    expect(metricValue(text, 'latch_mailer_dead_letters_total')).toBe(0);
  });

  it('dead-letters a permanent SMTP refusal (5xx) once, without retrying it', async () => {
    await start();
    smtp.answer = () => ({ code: 550, message: 'mailbox unavailable' });
    const eventId = randomUUID();
    const payload = securityAlertPayload(eventId);
    await publishEvent(nc, subjectPrefix, EventName.securityAlert, payload, eventId);
    await waitFor(async () => metricValue(await metrics(), 'latch_mailer_dead_letters_total', { reason: 'smtp_rejected' }) === 1, 10_000);

    const dead = (await streamMessages(nc, streamName)).filter((m) => m.subject === mailDeadLetterSubject(subjectPrefix) && m.header.get('Latch-Event-Id') === eventId);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.header.get('Latch-Dead-Letter-Reason')).toBe('smtp_rejected');
    expect(dead[0]!.header.get('Latch-Dead-Letter-Detail')).toContain('550');
    expect(Buffer.from(dead[0]!.data).equals(Buffer.from(payload))).toBe(true);
    expect(log.lines().some((l) => l.msg === 'mailer: event dead-lettered, no mail sent' && l.eventId === eventId)).toBe(true);

    // Acked after dead-lettering: a later event still goes through and the refused one is not
    // attempted again in between (one attempt for it, one for the next).
    smtp.answer = () => 'accept';
    const nextId = randomUUID();
    await publishEvent(nc, subjectPrefix, EventName.securityAlert, securityAlertPayload(nextId), nextId);
    await waitFor(() => mailsFor(nextId).length === 1, 10_000);
    expect(smtp.attempts).toBe(2);
    expect(mailsFor(eventId)).toHaveLength(0);
  });

  it('dead-letters after MAILER_MAX_DELIVER temporary failures instead of retrying forever', async () => {
    const { consumer } = await start({ MAILER_MAX_DELIVER: '3' });
    smtp.answer = () => ({ code: 421, message: 'service not available' });
    const eventId = randomUUID();
    await publishEvent(nc, subjectPrefix, EventName.securityAlert, securityAlertPayload(eventId), eventId);
    await waitFor(async () => metricValue(await metrics(), 'latch_mailer_dead_letters_total', { reason: 'retries_exhausted' }) === 1, 10_000);
    expect(smtp.attempts).toBe(3);
    // Acked: nothing is left for the consumer to hand out again.
    const info = await (await jetstreamManager(nc)).consumers.info(streamName, mailConsumerName(consumer, EventName.securityAlert));
    expect(info.num_ack_pending).toBe(0);
  });
});
