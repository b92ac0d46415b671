import { describe, expect, it } from 'vitest';
import { hashVerificationToken, looksLikeVerificationToken, newVerificationToken, verificationLink } from './verification-token.js';

describe('verification token', () => {
  it('carries 256 random bits behind its prefix and is recognised by shape', () => {
    const a = newVerificationToken();
    const b = newVerificationToken();
    expect(a).not.toBe(b);
    expect(a.startsWith('vfy_')).toBe(true);
    expect(Buffer.from(a.slice(4), 'base64url')).toHaveLength(32);
    expect(looksLikeVerificationToken(a)).toBe(true);
    expect(looksLikeVerificationToken(a.slice(0, -1))).toBe(false);
    expect(looksLikeVerificationToken(`rst_${a.slice(4)}`)).toBe(false);
    expect(hashVerificationToken(a)).toHaveLength(32);
    expect(hashVerificationToken(a).equals(hashVerificationToken(b))).toBe(false);
  });

  it('puts the token in the `token` query parameter of the configured URL, keeping its own parameters', () => {
    const link = new URL(verificationLink('https://app.example.test/verify?lang=fr', 'vfy_abc'));
    expect(link.origin + link.pathname).toBe('https://app.example.test/verify');
    expect(link.searchParams.get('lang')).toBe('fr');
    expect(link.searchParams.get('token')).toBe('vfy_abc');
  });
});
