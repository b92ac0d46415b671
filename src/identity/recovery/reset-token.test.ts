import { describe, expect, it } from 'vitest';
import { hashResetToken, looksLikeResetToken, newResetToken, resetLink } from './reset-token.js';

describe('reset token', () => {
  it('carries 256 random bits behind its prefix and is recognised by shape', () => {
    const a = newResetToken();
    const b = newResetToken();
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice(4), 'base64url')).toHaveLength(32);
    expect(looksLikeResetToken(a)).toBe(true);
    expect(looksLikeResetToken(a.slice(0, -1))).toBe(false);
    expect(looksLikeResetToken(`mfa_${a.slice(4)}`)).toBe(false);
    expect(hashResetToken(a)).toHaveLength(32);
  });

  it('puts the token in the `token` query parameter of the configured URL, keeping its own parameters', () => {
    const link = new URL(resetLink('https://app.example.test/reset?lang=fr', 'rst_abc'));
    expect(link.origin + link.pathname).toBe('https://app.example.test/reset');
    expect(link.searchParams.get('lang')).toBe('fr');
    expect(link.searchParams.get('token')).toBe('rst_abc');
  });
});
