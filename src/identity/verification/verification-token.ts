import { createHash, randomBytes } from 'node:crypto';

/**
 * The email-verification token (docs/security.md V1): 256 random bits, base64url, behind a fixed
 * prefix so it is never mistaken for a reset, refresh, challenge or access token. Only its SHA-256
 * is stored; the token itself exists in the link of its own event and nowhere else.
 */
const PREFIX = 'vfy_';

export function newVerificationToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashVerificationToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Anything else cannot be ours: refused without a database round trip. */
export function looksLikeVerificationToken(token: string): boolean {
  return token.length === PREFIX.length + 43 && token.startsWith(PREFIX) && /^[A-Za-z0-9_-]{43}$/.test(token.slice(PREFIX.length));
}

/** The link mailed to the user: PUBLIC_VERIFY_EMAIL_URL with the token in its `token` query parameter. */
export function verificationLink(publicVerifyEmailUrl: string, token: string): string {
  const url = new URL(publicVerifyEmailUrl);
  url.searchParams.set('token', token);
  return url.toString();
}
