import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { SecurityAlertKind, SecurityAlertSchema } from '../../gen/identity/events/v1/events_pb.js';
import { securityAlert } from './security-alert.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('security alert', () => {
  it('security alert: event_id is the outbox id and every field survives the wire', () => {
    const e = securityAlert({
      userId: 'u-1',
      email: 'ada@example.com',
      kind: 'refresh_token_reuse',
      clientIp: '203.0.113.7',
      userAgent: 'curl/8',
      occurredAtMs: 1_700_000_000_123,
    });
    expect(e.name).toBe('security_alert');
    expect(e.id).toMatch(UUID);
    const m = fromBinary(SecurityAlertSchema, e.payload);
    expect(m.eventId).toBe(e.id);
    expect(m).toMatchObject({ userId: 'u-1', email: 'ada@example.com', kind: SecurityAlertKind.REFRESH_TOKEN_REUSE, clientIp: '203.0.113.7', userAgent: 'curl/8' });
    expect(timestampMs(m.occurredAt!)).toBe(1_700_000_000_123);
  });

  it('maps every kind of the union to its own protobuf value', () => {
    const kinds = [
      'refresh_token_reuse',
      'password_changed',
      'password_reset',
      'totp_enabled',
      'totp_disabled',
      'backup_code_used',
      'backup_codes_regenerated',
      'account_locked',
      'mfa_locked',
      'second_factor_reset',
    ] as const;
    const wire = kinds.map((kind) => fromBinary(SecurityAlertSchema, securityAlert({ userId: 'u', email: 'e@example.com', kind, clientIp: '', userAgent: '', occurredAtMs: 0 }).payload).kind);
    expect(wire).not.toContain(SecurityAlertKind.UNSPECIFIED);
    expect(new Set(wire).size).toBe(kinds.length);
    expect(wire.map((k) => SecurityAlertKind[k])).toEqual(kinds.map((k) => k.toUpperCase()));
  });
});
