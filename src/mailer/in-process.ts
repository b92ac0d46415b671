import { eventNameOf } from '../shared/event-subjects.js';
import type { Logger } from '../shared/logger.js';
import { decodeMailJob, MAIL_EVENTS } from './decode.js';
import { SentIds } from './sent-ids.js';
import { classifyFailure, createMailTransport, describeFailure, type MailTransportConfig } from './transport.js';

export type InProcessMailerConfig = MailTransportConfig & { EVENTS_SUBJECT_PREFIX: string };

export interface InProcessMailerDeps {
  logger: Logger;
  /** Where the development delivery (no SMTP_URL) prints mail; process.stdout by default. */
  stdout?: NodeJS.WritableStream;
  now?: () => number;
}

export interface InProcessMailer {
  /** 'stdout' when SMTP_URL is unset (mail printed), 'smtp' otherwise. */
  readonly delivery: 'smtp' | 'stdout';
  /**
   * Turns one event into its mail, as the mailer process does for a JetStream message. Resolves
   * false for an event that is not a mail event (nothing done), true once the event is settled:
   * mailed, or skipped and logged (already mailed, expired link, undeliverable, refused by the
   * SMTP server). Rejects on a temporary failure, so the caller keeps the event and retries.
   */
  deliver(subject: string, payload: Uint8Array, msgId: string): Promise<boolean>;
  stop(): void;
}

const MAIL_EVENT_NAMES: ReadonlySet<string> = new Set(MAIL_EVENTS);

/**
 * The mailer for a single process without NATS: the identity process hands it the events its
 * outbox relay drains, and it renders and sends them with the mailer's own decoding, templates
 * and transport. What the mailer process does with a dead-letter subject is a log line here.
 */
export function createInProcessMailer(config: InProcessMailerConfig, deps: InProcessMailerDeps): InProcessMailer {
  const transport = createMailTransport(config, deps.stdout);
  const logger = deps.logger.child({ component: 'mailer' });
  const now = deps.now ?? Date.now;
  const sentIds = new SentIds();

  async function deliver(subject: string, payload: Uint8Array, msgId: string): Promise<boolean> {
    const name = eventNameOf(subject, config.EVENTS_SUBJECT_PREFIX);
    if (name === undefined || !MAIL_EVENT_NAMES.has(name)) return false;
    const job = decodeMailJob(subject, payload, config.EVENTS_SUBJECT_PREFIX, msgId);
    if (!job.ok) {
      logger.error({ eventId: job.eventId, event: job.event, reason: job.reason }, 'mailer: event cannot become a mail, no mail sent');
      return true;
    }
    const log = { eventId: job.eventId, event: job.event };
    if (sentIds.has(job.eventId)) {
      logger.info(log, 'mailer: already sent by this process, not sent again');
      return true;
    }
    if (job.expiresAtMs !== undefined && job.expiresAtMs <= now()) {
      logger.warn(log, 'mailer: link expired before it could be mailed, not sent');
      return true;
    }
    try {
      await transport.send(job.mail, job.eventId);
    } catch (err) {
      const failure = describeFailure(err);
      if (classifyFailure(err) === 'permanent') {
        logger.error({ ...log, err: failure }, 'mailer: SMTP server refused the mail, not sent');
        return true;
      }
      throw new Error(`mail not sent: ${failure.message}`, { cause: err });
    }
    sentIds.add(job.eventId);
    // The address and the body stay out of the log (a reset mail's body is the secret).
    logger.info({ ...log, delivery: transport.kind }, transport.kind === 'stdout' ? 'mailer: mail printed to stdout' : 'mailer: mail sent');
    return true;
  }

  return {
    delivery: transport.kind,
    deliver,
    stop: () => transport.close(),
  };
}
