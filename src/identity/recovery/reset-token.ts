import { createHash, randomBytes } from 'node:crypto';

/**
 * The password-reset token (docs/security.md F2): 256 random bits, base64url, behind a fixed
 * prefix so it is never mistaken for a refresh, challenge or access token. Only its SHA-256 is
 * stored; the token itself exists in the reset link of its own event and nowhere else.
 */
const PREFIX = 'rst_';

export function newResetToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashResetToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Anything else cannot be ours: refused without a database round trip. */
export function looksLikeResetToken(token: string): boolean {
  return token.length === PREFIX.length + 43 && token.startsWith(PREFIX) && /^[A-Za-z0-9_-]{43}$/.test(token.slice(PREFIX.length));
}

/** The link mailed to the user: PUBLIC_RESET_URL with the token in its `token` query parameter (F3). */
export function resetLink(publicResetUrl: string, token: string): string {
  const url = new URL(publicResetUrl);
  url.searchParams.set('token', token);
  return url.toString();
}
