import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { linkWithToken, opaqueTokenKind } from './opaque-token.js';

describe('opaque tokens', () => {
  const rst = opaqueTokenKind('rst_');
  const bare = opaqueTokenKind('');

  it('are 256 random bits in base64url behind their prefix, each one new', () => {
    const a = rst.create();
    expect(a).toMatch(/^rst_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.slice(4), 'base64url')).toHaveLength(32);
    expect(rst.create()).not.toBe(a);
    expect(bare.create()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('are stored as their SHA-256', () => {
    const t = rst.create();
    expect(rst.hash(t)).toEqual(createHash('sha256').update(t, 'utf8').digest());
  });

  it('recognise only their own kind and shape', () => {
    const t = rst.create();
    expect(rst.looksLike(t)).toBe(true);
    expect(opaqueTokenKind('vfy_').looksLike(t)).toBe(false);
    expect(rst.looksLike(`${t}x`)).toBe(false);
    expect(rst.looksLike(`rst_${'a'.repeat(42)}.`)).toBe(false);
    expect(bare.looksLike(t)).toBe(false);
    expect(bare.looksLike(bare.create())).toBe(true);
  });

  it('put the token in the link’s `token` parameter, keeping what the URL already has', () => {
    expect(linkWithToken('https://app.example/reset?lang=fr', 'rst_x')).toBe('https://app.example/reset?lang=fr&token=rst_x');
  });
});
