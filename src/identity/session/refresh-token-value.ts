import { createHash, randomBytes } from 'node:crypto';

/** R1: 256 bits from the CSPRNG; only the SHA-256 is stored. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** 32 bytes in base64url is 43 characters; anything else cannot be ours. */
export function looksLikeRefreshToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}
