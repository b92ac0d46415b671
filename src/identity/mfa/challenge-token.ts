import { createHash, randomBytes } from 'node:crypto';

/**
 * The MFA challenge token: 256 random bits, base64url, with a fixed prefix. It is opaque, not a
 * JWT (no dots, no signature), so it can never be mistaken for an access token, and access or
 * refresh tokens never have its shape (M6, T3). Only its SHA-256 is stored.
 */
const PREFIX = 'mfa_';

export function newChallengeToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashChallengeToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Anything else cannot be ours: refused without a database round trip. */
export function looksLikeChallengeToken(token: string): boolean {
  return token.length === PREFIX.length + 43 && token.startsWith(PREFIX) && /^[A-Za-z0-9_-]{43}$/.test(token.slice(PREFIX.length));
}
