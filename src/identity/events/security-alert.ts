import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { SecurityAlertKind as ProtoAlertKind, SecurityAlertSchema } from '../../gen/identity/events/v1/events_pb.js';
import type { BuiltEvent } from './event-messages.js';
import { EventName } from './subjects.js';

/**
 * What Latch tells a user about their own account. The domain speaks this union; only this file
 * knows the protobuf enum it travels as.
 */
export type SecurityAlertKind =
  | 'refresh_token_reuse'
  | 'password_changed'
  | 'password_reset'
  | 'totp_enabled'
  | 'totp_disabled'
  | 'backup_code_used'
  | 'backup_codes_regenerated'
  | 'account_locked'
  | 'mfa_locked'
  | 'second_factor_reset';

const TO_PROTO: Record<SecurityAlertKind, ProtoAlertKind> = {
  refresh_token_reuse: ProtoAlertKind.REFRESH_TOKEN_REUSE,
  password_changed: ProtoAlertKind.PASSWORD_CHANGED,
  password_reset: ProtoAlertKind.PASSWORD_RESET,
  totp_enabled: ProtoAlertKind.TOTP_ENABLED,
  totp_disabled: ProtoAlertKind.TOTP_DISABLED,
  backup_code_used: ProtoAlertKind.BACKUP_CODE_USED,
  backup_codes_regenerated: ProtoAlertKind.BACKUP_CODES_REGENERATED,
  account_locked: ProtoAlertKind.ACCOUNT_LOCKED,
  mfa_locked: ProtoAlertKind.MFA_LOCKED,
  second_factor_reset: ProtoAlertKind.SECOND_FACTOR_RESET,
};

export function toProtoAlertKind(kind: SecurityAlertKind): ProtoAlertKind {
  return TO_PROTO[kind];
}

// The builder takes only what the message may carry: there is no parameter through which a
// password, hash, TOTP secret or refresh token could reach an event (docs/security.md E3).

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
    kind: toProtoAlertKind(input.kind),
    occurredAt: timestampFromMs(input.occurredAtMs),
    clientIp: input.clientIp,
    userAgent: input.userAgent,
  });
  return { name: EventName.securityAlert, id, payload: toBinary(SecurityAlertSchema, message) };
}
