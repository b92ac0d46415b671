import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { PasswordResetRequestedSchema, SessionsRevokedSchema } from '../../gen/identity/events/v1/events_pb.js';
import { passwordResetRequested, sessionsRevoked } from './event-messages.js';

describe('event builders', () => {
  it('sessions revoked carries the user and the not-before instant', () => {
    const e = sessionsRevoked({ userId: 'u-2', notBeforeMs: 1_700_000_000_000 });
    expect(e.name).toBe('sessions_revoked');
    const m = fromBinary(SessionsRevokedSchema, e.payload);
    expect(m.eventId).toBe(e.id);
    expect(m.userId).toBe('u-2');
    expect(timestampMs(m.notBefore!)).toBe(1_700_000_000_000);
  });

  it('sessions revoked names one session when one ended, and none when all did', () => {
    const one = fromBinary(SessionsRevokedSchema, sessionsRevoked({ userId: 'u-2', sessionId: 's-9', notBeforeMs: 1 }).payload);
    expect(one.sessionId).toBe('s-9');
    const all = fromBinary(SessionsRevokedSchema, sessionsRevoked({ userId: 'u-2', notBeforeMs: 1 }).payload);
    expect(all.sessionId).toBe('');
  });

  it('password reset carries the link and expiry', () => {
    const e = passwordResetRequested({ userId: 'u-3', email: 'b@example.com', resetUrl: 'https://x/reset#t=abc', expiresAtMs: 1_700_000_900_000 });
    expect(e.name).toBe('password_reset_requested');
    const m = fromBinary(PasswordResetRequestedSchema, e.payload);
    expect(m).toMatchObject({ eventId: e.id, userId: 'u-3', email: 'b@example.com', resetUrl: 'https://x/reset#t=abc' });
    expect(timestampMs(m.expiresAt!)).toBe(1_700_000_900_000);
  });

  it('gives every event its own id', () => {
    const ids = new Set(Array.from({ length: 100 }, () => sessionsRevoked({ userId: 'u', notBeforeMs: 0 }).id));
    expect(ids.size).toBe(100);
  });
});
