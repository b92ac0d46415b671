import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import {
  EmailVerificationRequestedSchema,
  PasswordResetRequestedSchema,
  SecurityAlertKind,
  SecurityAlertSchema,
  SessionsRevokedSchema,
} from '../../gen/identity/events/v1/events_pb.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { EventPublisher } from './relay.js';
import type { LocalRevocationBus } from './revocation-bus.js';
import { DEFAULT_SUBJECT_PREFIX, EventName, eventNameOf } from './subjects.js';

/**
 * Takes the mail events (every event the mailer turns into mail) in in-process mode: the
 * composition root passes the mailer's in-process entry. Resolves false for an event that is not a mail event;
 * rejects when the mail could not be sent yet, which leaves the event in the outbox for a retry.
 */
export interface MailSink {
  deliver(subject: string, payload: Uint8Array, msgId: string): Promise<boolean>;
}

export interface LocalEventPublisherOptions {
  logger: Logger;
  /** Without one, mail events are only logged. */
  mail?: MailSink;
  /** Receives sessions_revoked, standing in for the NATS broadcast. */
  revocationBus?: LocalRevocationBus;
  subjectPrefix?: string;
}

/**
 * The publisher when no NATS is configured: the relay drains the outbox into this process, so a
 * single instance runs the same code path as production. It logs each event without any secret
 * (the reset and verification links carry a credential and are never logged) and feeds the local revocation bus.
 */
export class LocalEventPublisher implements EventPublisher {
  private readonly logger: Logger;
  private readonly bus: LocalRevocationBus | undefined;
  private readonly prefix: string;
  private readonly mail: MailSink | undefined;

  constructor(options: LocalEventPublisherOptions) {
    this.logger = options.logger;
    this.bus = options.revocationBus;
    this.prefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    this.mail = options.mail;
  }

  async publish(subject: string, payload: Uint8Array, msgId: string): Promise<void> {
    if (this.mail && (await this.mail.deliver(subject, payload, msgId))) return;
    const name = eventNameOf(subject, this.prefix);
    try {
      this.handle(name, payload, msgId);
    } catch (err) {
      if (err instanceof LatchError) throw err;
      // Left in the outbox with last_error set, where an operator can see it.
      throw new LatchError('internal', 'ERR_EVENT_UNDECODABLE', `event ${msgId} could not be decoded`, { cause: err });
    }
  }

  private handle(name: EventName | undefined, payload: Uint8Array, msgId: string): void {
    switch (name) {
      case EventName.passwordResetRequested: {
        const e = fromBinary(PasswordResetRequestedSchema, payload);
        this.logger.info(
          { eventId: msgId, event: name, userId: e.userId },
          'password reset requested: a reset mail would be sent (no mailer in in-process mode)',
        );
        return;
      }
      case EventName.emailVerificationRequested: {
        const e = fromBinary(EmailVerificationRequestedSchema, payload);
        this.logger.info(
          { eventId: msgId, event: name, userId: e.userId },
          'email verification requested: a verification mail would be sent (no mailer in in-process mode)',
        );
        return;
      }
      case EventName.securityAlert: {
        const e = fromBinary(SecurityAlertSchema, payload);
        this.logger.info(
          { eventId: msgId, event: name, userId: e.userId, kind: SecurityAlertKind[e.kind] ?? e.kind },
          'security alert: a notification mail would be sent (no mailer in in-process mode)',
        );
        return;
      }
      case EventName.sessionsRevoked: {
        const e = fromBinary(SessionsRevokedSchema, payload);
        if (!e.notBefore) throw new Error('not_before missing');
        const notBeforeMs = timestampMs(e.notBefore);
        this.bus?.deliver(e.userId, notBeforeMs, e.sessionId || undefined);
        this.logger.info({ eventId: msgId, event: name, userId: e.userId, sessionId: e.sessionId || undefined, notBeforeMs }, 'sessions revoked');
        return;
      }
      default:
        throw new LatchError('internal', 'ERR_EVENT_UNKNOWN', `event ${msgId} has an unknown subject`);
    }
  }
}
