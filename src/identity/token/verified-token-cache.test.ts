import { describe, expect, it } from 'vitest';
import { VerifiedTokenCache } from './verified-token-cache.js';

describe('VerifiedTokenCache', () => {
  it('answers only before exp and forgets expired entries', () => {
    const c = new VerifiedTokenCache<{ expMs: number }>(10);
    c.set('t', { expMs: 1000 });
    expect(c.get('t', 999)).toEqual({ expMs: 1000 });
    expect(c.get('t', 1000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('stays bounded, dropping the oldest entry first', () => {
    const c = new VerifiedTokenCache<{ expMs: number }>(2);
    c.set('a', { expMs: 10 });
    c.set('b', { expMs: 10 });
    c.set('c', { expMs: 10 });
    expect(c.size).toBe(2);
    expect(c.get('a', 0)).toBeUndefined();
    expect(c.get('c', 0)).toBeDefined();
  });

  it('keeps nothing when disabled', () => {
    const c = new VerifiedTokenCache<{ expMs: number }>(0);
    c.set('a', { expMs: 10 });
    expect(c.get('a', 0)).toBeUndefined();
  });

  it('answers only the token itself, not another ending in the same characters', () => {
    const c = new VerifiedTokenCache<{ expMs: number; sub: string }>(10);
    const signature = 'S'.repeat(86);
    const token = `eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.${signature}`;
    c.set(token, { expMs: 10, sub: 'alice' });
    expect(c.get(token, 0)?.sub).toBe('alice');
    // The same signature under another payload: the forgery a tail-only lookup would accept.
    expect(c.get(`eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJtYWxsb3J5In0.${signature}`, 0)).toBeUndefined();
    expect(c.get(`x${token}`, 0)).toBeUndefined();
    expect(c.get(token.slice(1), 0)).toBeUndefined();
    // Short tokens are keyed whole.
    c.set('short', { expMs: 10, sub: 'bob' });
    expect(c.get('short', 0)?.sub).toBe('bob');
    expect(c.get('shorter', 0)).toBeUndefined();
  });
});
