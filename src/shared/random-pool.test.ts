import { describe, expect, it } from 'vitest';
import { randomBytesPooled } from './random-pool.js';

describe('randomBytesPooled', () => {
  it('hands out every byte once: values across many blocks never repeat', () => {
    const seen = new Set<string>();
    // 20,000 × 32 bytes spans about 156 refills of the 4 KiB block; sizes that do not divide it
    // make values straddle the end of a block.
    for (let i = 0; i < 20_000; i++) {
      const b = randomBytesPooled(i % 3 === 0 ? 12 : i % 3 === 1 ? 16 : 32);
      seen.add(b.toString('hex'));
    }
    expect(seen.size).toBe(20_000);
  });

  it('returns independent buffers of the asked size, falling back to randomBytes for large sizes', () => {
    const a = randomBytesPooled(32);
    const b = randomBytesPooled(32);
    expect([a.length, b.length]).toEqual([32, 32]);
    a.fill(0);
    expect(b.equals(Buffer.alloc(32))).toBe(false);
    expect(randomBytesPooled(0).length).toBe(0);
    expect(randomBytesPooled(4096).length).toBe(4096);
    expect(() => randomBytesPooled(-1)).toThrow(RangeError);
    expect(() => randomBytesPooled(1.5)).toThrow(RangeError);
  });

  it('looks uniform: about half the bits set, every byte value present', () => {
    const bytes = Buffer.concat(Array.from({ length: 4000 }, () => randomBytesPooled(16)));
    let ones = 0;
    const values = new Set<number>();
    for (const v of bytes) {
      values.add(v);
      for (let x = v; x; x >>= 1) ones += x & 1;
    }
    const share = ones / (bytes.length * 8);
    // 512,000 bits: a fair source lands within 0.5 ± 0.005 far beyond any realistic chance.
    expect(share).toBeGreaterThan(0.495);
    expect(share).toBeLessThan(0.505);
    expect(values.size).toBe(256);
  });
});
