import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { SecurityAlertKind, SecurityAlertSchema } from '../../gen/identity/events/v1/events_pb.js';
import { renderSecurityAlert } from './security-alert.js';

const kinds = Object.values(SecurityAlertKind).filter((k): k is SecurityAlertKind => typeof k === 'number' && k !== SecurityAlertKind.UNSPECIFIED);

function alert(kind: SecurityAlertKind, userAgent = 'Firefox/140') {
  return create(SecurityAlertSchema, {
    eventId: 'e1',
    email: 'ada@example.com',
    kind,
    occurredAt: timestampFromMs(Date.UTC(2026, 0, 2, 3, 4)),
    clientIp: '2001:db8::1',
    userAgent,
  });
}

describe('security alert mail', () => {
  it.each(kinds.map((k) => [SecurityAlertKind[k], k] as const))('%s says what happened, when, from where and what to do', (_name, kind) => {
    const mail = renderSecurityAlert(alert(kind))!;
    expect(mail.to).toBe('ada@example.com');
    expect(mail.subject.length).toBeGreaterThan(5);
    expect(mail.text).toContain('2026-01-02 03:04 UTC');
    expect(mail.text).toContain('2001:db8::1');
    expect(mail.text).toMatch(/If (this was not you|these attempts were not yours|you did not ask)|Whoever tried/);
    expect(mail.html).toContain(mail.text.split('\n')[0]!);
  });

  it('gives each kind its own subject', () => {
    const subjects = kinds.map((k) => renderSecurityAlert(alert(k))!.subject);
    expect(new Set(subjects).size).toBe(kinds.length);
  });

  it('escapes event values in the HTML body', () => {
    const mail = renderSecurityAlert(alert(SecurityAlertKind.PASSWORD_CHANGED, '"><img src=x onerror=alert(1)>'))!;
    expect(mail.html).not.toContain('<img');
    expect(mail.html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(mail.text).toContain('"><img src=x onerror=alert(1)>');
  });

  it('renders nothing for a kind it does not know, so the event is dead-lettered, not mailed blank', () => {
    expect(renderSecurityAlert(alert(SecurityAlertKind.UNSPECIFIED))).toBeUndefined();
    expect(renderSecurityAlert(alert(99 as SecurityAlertKind))).toBeUndefined();
  });
});
