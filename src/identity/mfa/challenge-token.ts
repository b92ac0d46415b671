import { opaqueTokenKind } from '../../shared/opaque-token.js';

/**
 * The MFA challenge token: an opaque token behind `mfa_`. It is not a JWT (no dots, no
 * signature), so it can never be mistaken for an access token, and access or refresh tokens never
 * have its shape (M6, T3). Only its SHA-256 is stored.
 */
const kind = opaqueTokenKind('mfa_');

export const newChallengeToken = kind.create;
export const hashChallengeToken = kind.hash;
export const looksLikeChallengeToken = kind.looksLike;
