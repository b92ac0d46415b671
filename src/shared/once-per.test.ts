import { describe, expect, it } from 'vitest';
import { oncePer } from './once-per.js';

describe('oncePer', () => {
  it('derives once per key object and hands back the same value after', () => {
    let calls = 0;
    const lengthOf = oncePer((k: { s: string }) => ({ n: (calls++, k.s.length) }));
    const a = { s: 'abc' };
    const b = { s: 'abc' };
    const first = lengthOf(a);
    expect(lengthOf(a)).toBe(first);
    expect(calls).toBe(1);
    expect(lengthOf(b)).not.toBe(first);
    expect(lengthOf(b)).toEqual(first);
    expect(calls).toBe(2);
  });
});
