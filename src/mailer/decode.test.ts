import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { EmailVerificationRequestedSchema, PasswordResetRequestedSchema, SecurityAlertKind, SecurityAlertSchema } from '../gen/identity/events/v1/events_pb.js';
import { decodeMailJob } from './decode.js';

const prefix = 't.events';

describe('decodeMailJob', () => {
  it('renders a reset request with its link and expiry', () => {
    const data = toBinary(
      PasswordResetRequestedSchema,
      create(PasswordResetRequestedSchema, { eventId: 'r1', email: 'a@example.com', resetUrl: 'https://app.test/r?token=abc&x=1', expiresAt: timestampFromMs(Date.UTC(2030, 4, 6, 7, 8)) }),
    );
    const job = decodeMailJob(`${prefix}.password_reset_requested`, data, prefix, 'r1');
    expect(job.ok).toBe(true);
    if (!job.ok) return;
    expect(job.expiresAtMs).toBe(Date.UTC(2030, 4, 6, 7, 8));
    expect(job.mail.text).toContain('https://app.test/r?token=abc&x=1');
    expect(job.mail.text).toContain('2030-05-06 07:08 UTC');
    expect(job.mail.html).toContain('href="https://app.test/r?token=abc&amp;x=1"');
  });

  it('renders a verification request with its link and expiry', () => {
    const data = toBinary(
      EmailVerificationRequestedSchema,
      create(EmailVerificationRequestedSchema, { eventId: 'v1', email: 'a@example.com', verifyUrl: 'https://app.test/v?token=abc&x=1', expiresAt: timestampFromMs(Date.UTC(2030, 4, 6, 7, 8)) }),
    );
    const job = decodeMailJob(`${prefix}.email_verification_requested`, data, prefix, 'v1');
    expect(job.ok).toBe(true);
    if (!job.ok) return;
    expect(job.eventId).toBe('v1');
    expect(job.expiresAtMs).toBe(Date.UTC(2030, 4, 6, 7, 8));
    expect(job.mail.to).toBe('a@example.com');
    expect(job.mail.text).toContain('https://app.test/v?token=abc&x=1');
    expect(job.mail.html).toContain('href="https://app.test/v?token=abc&amp;x=1"');
    const noLink = toBinary(EmailVerificationRequestedSchema, create(EmailVerificationRequestedSchema, { eventId: 'v2', email: 'a@example.com', verifyUrl: 'javascript:alert(1)' }));
    expect(decodeMailJob(`${prefix}.email_verification_requested`, noLink, prefix, 'v2')).toMatchObject({ ok: false, reason: 'no http(s) verification link' });
  });

  it('refuses what cannot become a mail, with a reason that carries no payload', () => {
    const noLink = toBinary(PasswordResetRequestedSchema, create(PasswordResetRequestedSchema, { eventId: 'r2', email: 'a@example.com', resetUrl: 'javascript:alert(1)' }));
    const noAddress = toBinary(SecurityAlertSchema, create(SecurityAlertSchema, { eventId: 's1', kind: SecurityAlertKind.PASSWORD_CHANGED }));
    const unknownKind = toBinary(SecurityAlertSchema, create(SecurityAlertSchema, { eventId: 's2', email: 'a@example.com', kind: 42 as SecurityAlertKind }));
    expect(decodeMailJob(`${prefix}.password_reset_requested`, noLink, prefix, 'r2')).toMatchObject({ ok: false, eventId: 'r2', reason: 'no http(s) reset link' });
    expect(decodeMailJob(`${prefix}.security_alert`, noAddress, prefix, 's1')).toMatchObject({ ok: false, reason: 'no recipient address' });
    expect(decodeMailJob(`${prefix}.security_alert`, unknownKind, prefix, 's2')).toMatchObject({ ok: false, reason: 'unknown alert kind 42' });
    expect(decodeMailJob(`${prefix}.security_alert`, new Uint8Array([0xff, 0xff, 0xff]), prefix, 'm1')).toMatchObject({ ok: false, eventId: 'm1' });
    expect(decodeMailJob(`${prefix}.sessions_revoked`, new Uint8Array(), prefix, 'm2')).toMatchObject({ ok: false, reason: 'not a mail event' });
  });
});
