import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { EntityManager } from '@mikro-orm/core';
import {
  PasswordResetRequestedSchema,
  SecurityAlertSchema,
  SessionsRevokedSchema,
  type SecurityAlertKind,
} from '../../gen/identity/events/v1/events_pb.js';
import type { Clock } from '../../shared/clock.js';
import { OutboxEntity } from './outbox.entity.js';
import { EventName } from './subjects.js';

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

/**
 * Adds the event to the caller's unit of work; it is written when the caller's transaction
 * flushes and rolls back with it (E1: the state change and its event commit together).
 * Call it inside `em.transactional(...)` with the transaction's EntityManager.
 */
export function enqueue(em: EntityManager, event: OutboxEventInput, clock: Clock): string {
  const id = event.id ?? randomUUID();
  const now = new Date(clock.nowMs());
  const row = em.create(OutboxEntity, {
    id,
    subject: event.name,
    payload: Buffer.from(event.payload),
    createdAt: now,
    publishedAt: null,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
  });
  em.persist(row);
  return id;
}

// The builders take only what the message may carry: there is no parameter through which a
// password, hash, TOTP secret or refresh token could reach an event (SECURITY.md E3).

export interface SecurityAlertInput {
  userId: string;
  email: string;
  kind: SecurityAlertKind;
  clientIp: string;
  userAgent: string;
  occurredAtMs: number;
}

export function securityAlert(input: SecurityAlertInput): BuiltEvent {
  const id = randomUUID();
  const message = create(SecurityAlertSchema, {
    eventId: id,
    userId: input.userId,
    email: input.email,
    kind: input.kind,
    occurredAt: timestampFromMs(input.occurredAtMs),
    clientIp: input.clientIp,
    userAgent: input.userAgent,
  });
  return { name: EventName.securityAlert, id, payload: toBinary(SecurityAlertSchema, message) };
}

export interface SessionsRevokedInput {
  userId: string;
  /**
   * Without sessionId: tokens issued before this instant are no longer valid (the user's
   * tokens_valid_after). With it: the instant that session ended.
   */
  notBeforeMs: number;
  /** One session ended on its own (SECURITY R8); the user's other sessions stay active. */
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
  /** The link mailed to the user; the only event that carries a credential (API.md "Events"). */
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
