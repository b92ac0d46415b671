import { describe, expect, it } from 'vitest';
import { EventName, eventNameOf, streamSubjects, subjectFor } from './subjects.js';

describe('event subjects', () => {
  it('builds the documented subjects under the default prefix (docs/api.md "Events")', () => {
    expect(subjectFor(EventName.securityAlert)).toBe('identity.events.security_alert');
    expect(subjectFor(EventName.passwordResetRequested)).toBe('identity.events.password_reset_requested');
    expect(subjectFor(EventName.sessionsRevoked)).toBe('identity.events.sessions_revoked');
    expect(streamSubjects()).toBe('identity.events.>');
  });

  it('maps a full subject back to its name, and rejects foreign ones', () => {
    expect(eventNameOf('t1.ev.sessions_revoked', 't1.ev')).toBe('sessions_revoked');
    expect(eventNameOf('identity.events.sessions_revoked', 't1.ev')).toBeUndefined();
    expect(eventNameOf('identity.events.user_deleted')).toBeUndefined();
    expect(eventNameOf('identity.eventsXsecurity_alert')).toBeUndefined();
  });
});
