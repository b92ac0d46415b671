import { invalidArgument } from '../../shared/errors.js';
import { normalizeBackupCode } from './backup-code.js';
import { isWellFormedTotpCode } from './totp.js';

/** Longer input is refused before any work (X1, A2). */
export const MAX_CODE_CHARS = 64;

/** A second-factor code as typed, in canonical form; malformed input never reaches a check. */
export type Proof = { kind: 'totp'; code: string } | { kind: 'backup'; canonical: string };

export function parseTotpCode(code: string, field: string): string {
  if (code.length > MAX_CODE_CHARS) throw invalidArgument(field, 'is too long');
  // Apps show "123 456"; people type it that way.
  const compact = code.replace(/\s+/g, '');
  if (!isWellFormedTotpCode(compact)) throw invalidArgument(field, 'must be the 6-digit code from the authenticator app');
  return compact;
}

export function parseBackupCode(code: string): string {
  const canonical = code.length > MAX_CODE_CHARS ? null : normalizeBackupCode(code);
  if (canonical === null) throw invalidArgument('backup_code', 'must be a backup code such as ABCDE-FGHIJ');
  return canonical;
}

/** disable/regenerate take one field: digits are a TOTP code, anything else a backup code. */
export function parseProof(code: string): Proof {
  if (code.length > MAX_CODE_CHARS) throw invalidArgument('code', 'is too long');
  const compact = code.replace(/[\s-]+/g, '');
  if (/^[0-9]+$/.test(compact)) return { kind: 'totp', code: parseTotpCode(compact, 'code') };
  const canonical = normalizeBackupCode(compact);
  if (canonical === null) throw invalidArgument('code', 'must be a 6-digit authenticator code or a backup code');
  return { kind: 'backup', canonical };
}
