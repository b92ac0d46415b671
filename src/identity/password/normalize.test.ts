import { describe, expect, it } from 'vitest';
import { codePointLength, exceedsByteCap, normalizePassword } from './normalize.js';

describe('normalize', () => {
  it('counts code points, not UTF-16 units', () => {
    expect(codePointLength('🐎🐄')).toBe(2);
    expect('🐎🐄'.length).toBe(4);
    expect(codePointLength('')).toBe(0);
  });

  it('applies NFKC: ligatures, full-width letters and decomposed accents', () => {
    expect(normalizePassword('ﬁ')).toBe('fi');
    expect(normalizePassword('ＡＢＣ')).toBe('ABC');
    expect(normalizePassword('e\u0301')).toBe('\u00e9');
  });

  it('measures the byte cap in UTF-8', () => {
    expect(exceedsByteCap('€'.repeat(341), 1024)).toBe(false); // 1023 bytes
    expect(exceedsByteCap('€'.repeat(342), 1024)).toBe(true); // 1026 bytes, 342 units
    expect(exceedsByteCap('a'.repeat(1024), 1024)).toBe(false);
    expect(exceedsByteCap('a'.repeat(1025), 1024)).toBe(true);
  });
});
