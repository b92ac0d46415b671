import { randomBytes } from 'node:crypto';
import { base32Encode } from './base32.js';

/** M5: ten codes per set. */
export const BACKUP_CODE_COUNT = 10;
/** 10 base32 characters = 50 bits; with Argon2id storage and attempt limits that is ample (M5). */
export const BACKUP_CODE_LENGTH = 10;

/**
 * A fresh code, canonical form (10 upper-case base32 characters). Seven random bytes are 56
 * bits; the first ten characters take 50 of them whole, so every character is uniform.
 */
export function newBackupCode(): string {
  return base32Encode(randomBytes(7)).slice(0, BACKUP_CODE_LENGTH);
}

export function newBackupCodeSet(): string[] {
  return Array.from({ length: BACKUP_CODE_COUNT }, newBackupCode);
}

/** How a code is shown to the user: two groups of five, easier to read out and type. */
export function formatBackupCode(canonical: string): string {
  return `${canonical.slice(0, 5)}-${canonical.slice(5)}`;
}

/**
 * Canonical form of what a user typed (spaces and dashes dropped, upper-cased), or null when it
 * cannot be a backup code at all.
 */
export function normalizeBackupCode(input: string): string | null {
  const canonical = input.replace(/[\s-]+/g, '').toUpperCase();
  return /^[A-Z2-7]{10}$/.test(canonical) ? canonical : null;
}
