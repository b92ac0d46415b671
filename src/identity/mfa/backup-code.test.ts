import { describe, expect, it } from 'vitest';
import { BACKUP_CODE_COUNT, formatBackupCode, newBackupCode, newBackupCodeSet, normalizeBackupCode } from './backup-code.js';
import { hashChallengeToken, looksLikeChallengeToken, newChallengeToken } from './challenge-token.js';

describe('backup codes', () => {
  it('are 10 base32 characters (50 bits), shown as two groups of five', () => {
    const code = newBackupCode();
    expect(code).toMatch(/^[A-Z2-7]{10}$/);
    expect(formatBackupCode(code)).toBe(`${code.slice(0, 5)}-${code.slice(5)}`);
    expect(newBackupCodeSet()).toHaveLength(BACKUP_CODE_COUNT);
  });

  it('use every character of the alphabet in every position', () => {
    // 4000 codes: a position missing a letter has probability 32·(31/32)^4000 ≈ 10⁻⁵⁴.
    const seen = Array.from({ length: 10 }, () => new Set<string>());
    for (let i = 0; i < 4000; i++) [...newBackupCode()].forEach((c, j) => seen[j]!.add(c));
    for (const s of seen) expect(s.size).toBe(32);
  });

  it('normalise what people type', () => {
    expect(normalizeBackupCode('abcde-fgh27')).toBe('ABCDEFGH27');
    expect(normalizeBackupCode(' ABCDE FGH27 ')).toBe('ABCDEFGH27');
    expect(normalizeBackupCode('AB-CD-EF-GH-27')).toBe('ABCDEFGH27');
    expect(normalizeBackupCode('ABCDE-FGH28')).toBeNull(); // 8 is not base32
    expect(normalizeBackupCode('ABCDE-FGH2')).toBeNull();
    expect(normalizeBackupCode('ABCDE-FGH277')).toBeNull();
    expect(normalizeBackupCode('')).toBeNull();
  });
});

describe('challenge tokens', () => {
  it('are 256-bit, prefixed, and recognised by shape only', () => {
    const t = newChallengeToken();
    expect(t).toMatch(/^mfa_[A-Za-z0-9_-]{43}$/);
    expect(looksLikeChallengeToken(t)).toBe(true);
    expect(newChallengeToken()).not.toBe(t);
    expect(looksLikeChallengeToken(t.slice(4))).toBe(false);
    expect(looksLikeChallengeToken(`${t}A`)).toBe(false);
    expect(looksLikeChallengeToken('eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln')).toBe(false);
    expect(hashChallengeToken(t)).toHaveLength(32);
  });
});
