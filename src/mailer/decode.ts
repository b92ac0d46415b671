import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { EmailVerificationRequestedSchema, PasswordResetRequestedSchema, SecurityAlertKind, SecurityAlertSchema } from '../gen/identity/events/v1/events_pb.js';
import { EventName, eventNameOf } from '../shared/event-subjects.js';
import { renderEmailVerification } from './render/email-verification.js';
import { renderPasswordReset } from './render/password-reset.js';
import type { RenderedMail } from './render/mail.js';
import { renderSecurityAlert } from './render/security-alert.js';

/** The event names that become mail; the durable consumer filters on exactly these. */
export const MAIL_EVENTS = [EventName.securityAlert, EventName.passwordResetRequested, EventName.emailVerificationRequested] as const;

export type MailJob =
  /** `expiresAtMs`: a mail not worth sending after this time (a reset or verification link that no longer works). */
  | { ok: true; eventId: string; event: EventName; mail: RenderedMail; expiresAtMs?: number }
  /** Cannot become a mail whatever we retry: dead-lettered. `reason` is safe to log. */
  | { ok: false; eventId: string; event: string; reason: string };

/** Turns one stored message into the mail it asks for, or says why it cannot. */
export function decodeMailJob(subject: string, data: Uint8Array, subjectPrefix: string, msgId: string | undefined): MailJob {
  const name = eventNameOf(subject, subjectPrefix);
  const fallbackId = msgId ?? '';
  try {
    switch (name) {
      case EventName.securityAlert: {
        const alert = fromBinary(SecurityAlertSchema, data);
        const eventId = alert.eventId || fallbackId;
        if (!alert.email) return { ok: false, eventId, event: name, reason: 'no recipient address' };
        const mail = renderSecurityAlert(alert);
        if (!mail) return { ok: false, eventId, event: name, reason: `unknown alert kind ${SecurityAlertKind[alert.kind] ?? alert.kind}` };
        return { ok: true, eventId, event: name, mail };
      }
      case EventName.passwordResetRequested: {
        const reset = fromBinary(PasswordResetRequestedSchema, data);
        const eventId = reset.eventId || fallbackId;
        if (!reset.email) return { ok: false, eventId, event: name, reason: 'no recipient address' };
        if (!/^https?:\/\//.test(reset.resetUrl)) return { ok: false, eventId, event: name, reason: 'no http(s) reset link' };
        const expiresAtMs = reset.expiresAt ? timestampMs(reset.expiresAt) : undefined;
        return { ok: true, eventId, event: name, mail: renderPasswordReset(reset), ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
      }
      case EventName.emailVerificationRequested: {
        const verify = fromBinary(EmailVerificationRequestedSchema, data);
        const eventId = verify.eventId || fallbackId;
        if (!verify.email) return { ok: false, eventId, event: name, reason: 'no recipient address' };
        if (!/^https?:\/\//.test(verify.verifyUrl)) return { ok: false, eventId, event: name, reason: 'no http(s) verification link' };
        const expiresAtMs = verify.expiresAt ? timestampMs(verify.expiresAt) : undefined;
        return { ok: true, eventId, event: name, mail: renderEmailVerification(verify), ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
      }
      default:
        return { ok: false, eventId: fallbackId, event: name ?? 'unknown', reason: 'not a mail event' };
    }
  } catch (err) {
    // A protobuf decode error names the wire problem, never field contents.
    return { ok: false, eventId: fallbackId, event: name ?? 'unknown', reason: `undecodable payload (${err instanceof Error ? err.message : String(err)})` };
  }
}
