import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { EmailVerificationRequestedSchema, PasswordResetRequestedSchema, SessionsRevokedSchema } from '../../gen/identity/events/v1/events_pb.js';
import { EventName } from './subjects.js';

// The builders take only what the message may carry: there is no parameter through which a
// password, hash, TOTP secret or refresh token could reach an event (docs/security.md E3).
// Security alerts are built in security-alert.ts.

/**
 * An event ready for the outbox. `id` is the event_id inside the payload, the outbox primary key
 * and the Nats-Msg-Id, so one id follows the event from the transaction to the mailer's dedup.
 */
export interface OutboxEventInput {
  name: EventName;
  payload: Uint8Array;
  id?: string;
}

export interface BuiltEvent extends OutboxEventInput {
  id: string;
}

export interface SessionsRevokedInput {
  userId: string;
  /**
   * Without sessionId: tokens issued before this instant are no longer valid (the user's
   * tokens_valid_after). With it: the instant that session ended.
   */
  notBeforeMs: number;
  /** One session ended on its own (docs/security.md R8); the user's other sessions stay active. */
  sessionId?: string;
}

export function sessionsRevoked(input: SessionsRevokedInput): BuiltEvent {
  const id = randomUUID();
  const message = create(SessionsRevokedSchema, {
    eventId: id,
    userId: input.userId,
    notBefore: timestampFromMs(input.notBeforeMs),
    sessionId: input.sessionId ?? '',
  });
  return { name: EventName.sessionsRevoked, id, payload: toBinary(SessionsRevokedSchema, message) };
}

export interface PasswordResetRequestedInput {
  userId: string;
  email: string;
  /** The link mailed to the user; a credential, like the verification link (docs/api.md "Events"). */
  resetUrl: string;
  expiresAtMs: number;
}

export function passwordResetRequested(input: PasswordResetRequestedInput): BuiltEvent {
  const id = randomUUID();
  const message = create(PasswordResetRequestedSchema, {
    eventId: id,
    userId: input.userId,
    email: input.email,
    resetUrl: input.resetUrl,
    expiresAt: timestampFromMs(input.expiresAtMs),
  });
  return { name: EventName.passwordResetRequested, id, payload: toBinary(PasswordResetRequestedSchema, message) };
}

export interface EmailVerificationRequestedInput {
  userId: string;
  /** The address the link proves; the token is bound to it. */
  email: string;
  /** The link mailed to the user; a credential like the reset link (docs/api.md "Events"). */
  verifyUrl: string;
  expiresAtMs: number;
}

export function emailVerificationRequested(input: EmailVerificationRequestedInput): BuiltEvent {
  const id = randomUUID();
  const message = create(EmailVerificationRequestedSchema, {
    eventId: id,
    userId: input.userId,
    email: input.email,
    verifyUrl: input.verifyUrl,
    expiresAt: timestampFromMs(input.expiresAtMs),
  });
  return { name: EventName.emailVerificationRequested, id, payload: toBinary(EmailVerificationRequestedSchema, message) };
}
