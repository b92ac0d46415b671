import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { Logger } from '../shared/logger.js';
import { decodeMailJob } from './decode.js';
import type { MailerMetrics } from './metrics.js';
import { SentIds } from './sent-ids.js';
import { Slots } from './slots.js';
import { classifyFailure, describeFailure, type MailTransport } from './transport.js';
import { WakeableSleep } from '../shared/wakeable-sleep.js';

export interface MailWorkerOptions {
  js: JetStreamClient;
  /**
   * Resolves once the server has read everything this connection wrote before the call (NATS
   * PING/PONG: `nc.flush()`); rejects when the connection is lost first.
   */
  flush: () => Promise<void>;
  /** Resolves the durable consumer; retried by the worker until it succeeds or stops. */
  consumer: () => Promise<Consumer>;
  transport: MailTransport;
  metrics: MailerMetrics;
  logger: Logger;
  subjectPrefix: string;
  deadLetterSubject: string;
  concurrency: number;
  /** Deliveries of one event after which a temporary failure dead-letters it. */
  maxDeliver: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** How often a send in progress tells JetStream it is still being worked on. */
  workingIntervalMs: number;
  now?: () => number;
}

const RETRY_SETUP_MS = 1000;
/** How long an ack may wait for the server to confirm it has read it (see ack()). */
const ACK_CONFIRM_MS = 5000;

/**
 * Pulls mail events from the durable consumer and turns each into one mail. Every message ends
 * in exactly one of: ack after the SMTP server accepted the mail; ack after it was published to
 * the dead-letter subject; ack of a redelivery this process already mailed, or of an expired reset
 * link (counted and logged); nak with backoff. Nothing is acked before it is sent or
 * dead-lettered, so a crash loses no mail; it may repeat the mails that were in flight.
 */
export class MailWorker {
  private readonly o: MailWorkerOptions;
  private readonly slots: Slots;
  private readonly sentIds = new SentIds();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly now: () => number;
  private running = false;
  private loop: Promise<void> | undefined;
  private messages: ConsumerMessages | undefined;
  private readonly pause = new WakeableSleep();
  private consumingNow = false;

  constructor(options: MailWorkerOptions) {
    this.o = options;
    this.slots = new Slots(options.concurrency);
    this.now = options.now ?? Date.now;
  }

  /** True while the consumer is attached and pulling. */
  get consuming(): boolean {
    return this.consumingNow;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops pulling, lets the sends in flight finish (and be acked), hands back the rest unacked. */
  async stop(): Promise<void> {
    this.running = false;
    this.pause.wake();
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    await Promise.all(this.inFlight);
  }

  private async run(): Promise<void> {
    let lastSetupError: string | undefined;
    while (this.running) {
      try {
        const consumer = await this.o.consumer();
        if (!this.running) break;
        this.messages = await consumer.consume({ max_messages: this.o.concurrency });
        this.consumingNow = true;
        lastSetupError = undefined;
        this.o.logger.info({ concurrency: this.o.concurrency }, 'mailer: consuming');
        for await (const msg of this.messages) {
          await this.slots.acquire();
          if (!this.running) {
            this.slots.release();
            // Pulled but not started: hand it straight back to another replica.
            msg.nak();
            continue;
          }
          const p: Promise<void> = this.handle(msg)
            .catch((err) => {
              // handle() settles every message itself; this is a bug guard. The message is not
              // acked, so JetStream hands it out again after the ack wait.
              this.o.logger.error({ err: describeFailure(err) }, 'mailer: message handling failed');
            })
            .finally(() => {
              this.inFlight.delete(p);
              this.slots.release();
            });
          this.inFlight.add(p);
        }
      } catch (err) {
        if (!this.running) break;
        // Once per distinct cause (a stream the identity process has not created yet would
        // otherwise log every second).
        const failure = describeFailure(err);
        if (failure.message !== lastSetupError) this.o.logger.warn({ err: failure }, 'mailer: consumer not available, retrying every second');
        lastSetupError = failure.message;
      } finally {
        this.consumingNow = false;
      }
      if (this.running) await this.pause.sleep(RETRY_SETUP_MS);
    }
  }


  private async handle(msg: JsMsg): Promise<void> {
    const { logger, metrics } = this.o;
    const job = decodeMailJob(msg.subject, msg.data, this.o.subjectPrefix, msg.headers?.get('Nats-Msg-Id') || undefined);
    if (!job.ok) {
      await this.deadLetter(msg, job.eventId, job.event, 'undeliverable', job.reason);
      return;
    }
    const log = { eventId: job.eventId, event: job.event, delivery: msg.info.deliveryCount };
    if (this.sentIds.has(job.eventId)) {
      metrics.skipped.inc({ reason: 'duplicate' });
      logger.info(log, 'mailer: already sent by this process, not sent again');
      await this.ack(msg, job.eventId);
      return;
    }
    if (job.expiresAtMs !== undefined && job.expiresAtMs <= this.now()) {
      metrics.skipped.inc({ reason: 'expired' });
      logger.warn(log, 'mailer: reset link expired before it could be mailed, not sent');
      await this.ack(msg, job.eventId);
      return;
    }

    metrics.inFlight.inc();
    const working = setInterval(() => msg.working(), this.o.workingIntervalMs);
    try {
      await this.o.transport.send(job.mail, job.eventId);
    } catch (err) {
      const failureClass = classifyFailure(err);
      metrics.failures.inc({ class: failureClass });
      const failure = describeFailure(err);
      if (failureClass === 'permanent') {
        await this.deadLetter(msg, job.eventId, job.event, 'smtp_rejected', `SMTP ${failure.responseCode ?? ''} ${failure.message}`);
        return;
      }
      if (msg.info.deliveryCount >= this.o.maxDeliver) {
        await this.deadLetter(msg, job.eventId, job.event, 'retries_exhausted', `after ${msg.info.deliveryCount} deliveries: ${failure.message}`);
        return;
      }
      const retryInMs = this.backoff(msg.info.deliveryCount);
      logger.warn({ ...log, err: failure, retryInMs }, 'mailer: temporary send failure, will retry');
      msg.nak(retryInMs);
      return;
    } finally {
      clearInterval(working);
      metrics.inFlight.dec();
    }
    this.sentIds.add(job.eventId);
    metrics.sent.inc({ event: job.event });
    // The address and the body stay out of the log (a reset mail's body is the secret).
    logger.info(log, 'mailer: mail sent');
    await this.ack(msg, job.eventId);
  }

  /**
   * Acks, then waits until the server has read the ack (a PING sent after it is answered) before
   * the message's slot is free again: so the mails a crash of this process can repeat are at most
   * its slots (MAILER_CONCURRENCY). JetStream's own ack confirmation (`ackAck`) would say the
   * same a little later, at the price of a request per mail (a reply through the inbox and, in
   * the NATS client, Errors built for every request) that `npm run bench` shows in the mailer's
   * throughput.
   */
  private async ack(msg: JsMsg, eventId: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      msg.ack();
      await Promise.race([
        this.o.flush(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not confirmed within ${ACK_CONFIRM_MS} ms`)), ACK_CONFIRM_MS);
        }),
      ]);
    } catch (err) {
      // If the ack was lost, the message is redelivered later; this process skips it as already sent.
      this.o.logger.warn({ eventId, err: describeFailure(err) }, 'mailer: ack not confirmed');
    } finally {
      clearTimeout(timer);
    }
  }

  /** MAILER_BACKOFF_MS doubled per delivery, capped: a broken SMTP server sees no retry storm. */
  private backoff(deliveryCount: number): number {
    return Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** Math.min(Math.max(deliveryCount - 1, 0), 30));
  }

  /**
   * Publishes the original payload with the reason to the dead-letter subject (in the stream, so
   * it is kept), then acks. If that publish fails the message is nakked, never dropped.
   */
  private async deadLetter(msg: JsMsg, eventId: string, event: string, reason: string, detail: string): Promise<void> {
    const h = headers();
    h.set('Latch-Dead-Letter-Reason', reason);
    h.set('Latch-Dead-Letter-Detail', oneLine(detail));
    h.set('Latch-Original-Subject', msg.subject);
    h.set('Latch-Event-Id', eventId);
    h.set('Latch-Deliveries', String(msg.info.deliveryCount));
    try {
      await this.o.js.publish(this.o.deadLetterSubject, msg.data, {
        headers: h,
        msgID: `mail-dead-letter.${eventId || `seq-${msg.info.streamSequence}`}`,
      });
    } catch (err) {
      const retryInMs = this.backoff(msg.info.deliveryCount);
      this.o.logger.warn({ eventId, event, err: describeFailure(err), retryInMs }, 'mailer: dead-letter publish failed, will retry');
      msg.nak(retryInMs);
      return;
    }
    this.o.metrics.deadLetters.inc({ reason });
    this.o.logger.error(
      { eventId, event, reason, detail: oneLine(detail), deliveries: msg.info.deliveryCount, subject: this.o.deadLetterSubject },
      'mailer: event dead-lettered, no mail sent',
    );
    await this.ack(msg, eventId);
  }
}

/** Header values are one line; SMTP replies may span several. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim().slice(0, 300);
}
