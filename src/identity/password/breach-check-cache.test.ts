import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/clock.js';
import { RangeCache } from './breach-check-cache.js';
import type { BreachedSuffixes } from './breach-check-range.js';

const range = (): BreachedSuffixes => ({ has: () => false });

describe('RangeCache', () => {
  it('forgets a range once its time to live has passed', () => {
    const clock = new ManualClock(1_000_000);
    const cache = new RangeCache(10, 60_000, clock);
    const r = range();
    cache.set('5BAA6', r);
    clock.advance(59_999);
    expect(cache.get('5BAA6')).toBe(r);
    clock.advance(1);
    expect(cache.get('5BAA6')).toBeUndefined();
  });

  it('keeps at most its cap, dropping the least recently used', () => {
    const cache = new RangeCache(2, 60_000, new ManualClock());
    cache.set('00000', range());
    cache.set('11111', range());
    expect(cache.get('00000')).toBeDefined(); // 11111 is now the least recently used
    cache.set('22222', range());
    expect(cache.size).toBe(2);
    expect(cache.get('11111')).toBeUndefined();
    expect(cache.get('00000')).toBeDefined();
    expect(cache.get('22222')).toBeDefined();
  });

  it('holds nothing with a cap or a time to live of 0', () => {
    const off = [new RangeCache(0, 60_000, new ManualClock()), new RangeCache(10, 0, new ManualClock())];
    for (const cache of off) {
      cache.set('5BAA6', range());
      expect(cache.get('5BAA6')).toBeUndefined();
    }
  });
});
