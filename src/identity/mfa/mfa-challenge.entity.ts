import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** The step between a correct password and the second factor: single use, short-lived (M6). */
export const MfaChallengeEntity = defineEntity({
  name: 'MfaChallenge',
  tableName: 'mfa_challenges',
  properties: (p) => ({
    id: p.uuid().primary(),
    userId: p.uuid().index(),
    /** SHA-256 of the opaque challenge token. */
    tokenHash: p.blob().unique(),
    /** Space-separated RFC 8176 methods already proven (normally `pwd`). */
    amr: p.text(),
    expiresAt: p.datetime(),
    consumedAt: p.datetime().nullable(),
    /** Attempts charged against this challenge (A3); at the limit the challenge is dead. */
    failedAttempts: p.integer().default(0),
    createdAt: p.datetime(),
    clientIp: p.text().nullable(),
    userAgent: p.text().nullable(),
  }),
});

export type MfaChallenge = InferEntity<typeof MfaChallengeEntity>;
