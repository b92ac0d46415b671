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
});
