import { linkWithToken, opaqueTokenKind } from '../../shared/opaque-token.js';

/**
 * The password-reset token (docs/security.md F2): an opaque token behind `rst_`, so it is never
 * mistaken for a refresh, challenge or access token. Only its SHA-256 is stored; the token itself
 * exists in the reset link of its own event and nowhere else.
 */
const kind = opaqueTokenKind('rst_');

export const newResetToken = kind.create;
export const hashResetToken = kind.hash;
export const looksLikeResetToken = kind.looksLike;

/** The link mailed to the user: PUBLIC_RESET_URL with the token in its `token` query parameter (F3). */
export const resetLink = linkWithToken;
