import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** A user's TOTP secret; one per user, pending until a valid code confirms it (M4). */
export const TotpCredentialEntity = defineEntity({
  name: 'TotpCredential',
  tableName: 'totp_credentials',
  properties: (p) => ({
    userId: p.uuid().primary(),
    /** SecretBox-sealed raw secret, aad `totp:<userId>` (M2). */
    secretEnc: p.blob(),
    confirmedAt: p.datetime().nullable(),
    /** The last accepted RFC 6238 step, advanced only by compare-and-set (M3). */
    lastUsedStep: p.bigint('bigint').nullable(),
    createdAt: p.datetime(),
  }),
});

export type TotpCredential = InferEntity<typeof TotpCredentialEntity>;
