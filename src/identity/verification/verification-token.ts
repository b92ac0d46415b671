import { linkWithToken, opaqueTokenKind } from '../../shared/opaque-token.js';

/**
 * The email-verification token (docs/security.md V1): an opaque token behind `vfy_`, so it is
 * never mistaken for a reset, refresh, challenge or access token. Only its SHA-256 is stored; the
 * token itself exists in the link of its own event and nowhere else.
 */
const kind = opaqueTokenKind('vfy_');

export const newVerificationToken = kind.create;
export const hashVerificationToken = kind.hash;
export const looksLikeVerificationToken = kind.looksLike;

/** The link mailed to the user: PUBLIC_VERIFY_EMAIL_URL with the token in its `token` query parameter. */
export const verificationLink = linkWithToken;
