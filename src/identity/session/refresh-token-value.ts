import { opaqueTokenKind } from '../../shared/opaque-token.js';

/** R1: 256 bits from the CSPRNG, no prefix (43 base64url characters); only the SHA-256 is stored. */
const kind = opaqueTokenKind('');

export const newRefreshToken = kind.create;
export const hashRefreshToken = kind.hash;
export const looksLikeRefreshToken = kind.looksLike;
