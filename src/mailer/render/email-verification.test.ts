import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { EmailVerificationRequestedSchema } from '../../gen/identity/events/v1/events_pb.js';
import { renderEmailVerification } from './email-verification.js';

const event = (verifyUrl: string) =>
  create(EmailVerificationRequestedSchema, {
    eventId: 'e1',
    userId: 'u1',
    email: 'ada@example.com',
    verifyUrl,
    expiresAt: timestampFromMs(Date.UTC(2026, 0, 2, 3, 4)),
  });

describe('email verification mail', () => {
  it('carries the link in both bodies with its expiry', () => {
    const url = 'https://app.example.test/verify-email?token=vfy_abc';
    const mail = renderEmailVerification(event(url));
    expect(mail.to).toBe('ada@example.com');
    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.text).toContain(url);
    expect(mail.text).toContain('2026-01-02 03:04 UTC');
    expect(mail.html).toContain(`<a href="${url}">`);
    expect(mail.html).toContain('2026-01-02 03:04 UTC');
    expect(mail.subject).not.toContain('vfy_abc');
  });

  it('escapes the link in the HTML body', () => {
    const mail = renderEmailVerification(event('https://app.example.test/v?token=a&x="><script>alert(1)</script>'));
    expect(mail.html).not.toContain('<script>');
    expect(mail.html).toContain('token=a&amp;x=&quot;&gt;&lt;script&gt;');
  });
});
