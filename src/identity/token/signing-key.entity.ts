import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** An access-token signing key; the private half is AES-256-GCM encrypted (T5). */
export const SigningKeyEntity = defineEntity({
  name: 'SigningKey',
  tableName: 'signing_keys',
  properties: (p) => ({
    kid: p.string().primary(),
    algorithm: p.string(),
    publicJwk: p.json<Record<string, unknown>>(),
    privateKeyEnc: p.blob(),
    createdAt: p.datetime(),
    /** No token is signed with this key after this instant. */
    signUntil: p.datetime(),
    /** The key leaves the JWKS after this instant (signUntil + the longest access-token life). */
    publishUntil: p.datetime(),
  }),
});

export type SigningKey = InferEntity<typeof SigningKeyEntity>;
