import { createHash } from 'node:crypto';
import { randomBytesPooled } from './random-pool.js';

/**
 * A secret handed to one party (a refresh token, a reset or verification link, an MFA
 * challenge): 256 random bits from the CSPRNG in base64url (43 characters), behind a prefix of
 * its kind, so one kind is never taken for another or for a JWT. Only its SHA-256 is stored.
 */
export interface OpaqueTokenKind {
  create(): string;
  hash(token: string): Buffer;
  /** Anything else cannot be ours: refused without a database round trip. */
  looksLike(token: string): boolean;
}

const BODY = /^[A-Za-z0-9_-]{43}$/;

export function opaqueTokenKind(prefix: string): OpaqueTokenKind {
  return {
    create: () => prefix + randomBytesPooled(32).toString('base64url'),
    hash: (token) => createHash('sha256').update(token, 'utf8').digest(),
    looksLike: (token) => token.length === prefix.length + 43 && token.startsWith(prefix) && BODY.test(token.slice(prefix.length)),
  };
}

/** A mailed link: the configured public URL with the token in its `token` query parameter. */
export function linkWithToken(publicUrl: string, token: string): string {
  const url = new URL(publicUrl);
  url.searchParams.set('token', token);
  return url.toString();
}
