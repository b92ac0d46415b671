import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** One opaque refresh token. Only its SHA-256 is stored (R1); consumed tokens stay (R2). */
export const RefreshTokenEntity = defineEntity({
  name: 'RefreshToken',
  tableName: 'refresh_tokens',
  properties: (p) => ({
    id: p.uuid().primary(),
    sessionId: p.uuid().index(),
    userId: p.uuid().index(),
    tokenHash: p.blob().unique(),
    parentId: p.uuid().nullable(),
    createdAt: p.datetime(),
    /** Idle expiry (R6). */
    expiresAt: p.datetime(),
    consumedAt: p.datetime().nullable(),
    successorId: p.uuid().nullable(),
    /** The successor's token, AES-256-GCM encrypted, kept for the grace window only (R4). */
    successorTokenEnc: p.blob().nullable(),
  }),
});

export type RefreshToken = InferEntity<typeof RefreshTokenEntity>;
