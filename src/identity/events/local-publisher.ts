import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import {
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

export interface LocalEventPublisherOptions {
  logger: Logger;
  /** Receives sessions_revoked, standing in for the NATS broadcast. */
  revocationBus?: LocalRevocationBus;
  subjectPrefix?: string;
}

/**
 * The publisher when no NATS is configured: the relay drains the outbox into this process, so a
 * single instance runs the same code path as production. It logs each event without any secret
 * (the reset link carries a credential and is never logged) and feeds the local revocation bus.
 */
export class LocalEventPublisher implements EventPublisher {
  private readonly logger: Logger;
  private readonly bus: LocalRevocationBus | undefined;
  private readonly prefix: string;

  constructor(options: LocalEventPublisherOptions) {
    this.logger = options.logger;
    this.bus = options.revocationBus;
    this.prefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  }

  async publish(subject: string, payload: Uint8Array, msgId: string): Promise<void> {
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
