import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** A session is one refresh-token family: what ListSessions shows and RevokeSession ends. */
export const SessionEntity = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: (p) => ({
    id: p.uuid().primary(),
    userId: p.uuid().index(),
    /** Space-separated authentication methods (RFC 8176 values: pwd, otp). */
    amr: p.text(),
    userAgent: p.text().nullable(),
    clientIp: p.text().nullable(),
    createdAt: p.datetime(),
    lastUsedAt: p.datetime(),
    /** Absolute lifetime of the family (R6). */
    expiresAt: p.datetime(),
    revokedAt: p.datetime().nullable(),
    revokeReason: p.text().nullable(),
  }),
});

export type Session = InferEntity<typeof SessionEntity>;
