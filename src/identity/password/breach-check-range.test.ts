import { describe, expect, it } from 'vitest';
import { isRangePrefix, parseRange, RangeFetchError } from './breach-check-range.js';

const A = '1E4C9B93F3F0682250B6CF8331B7EE68FD8';
const B = '0018A45C4D1DEF81644B54AB7F969B88D65';
const C = '00D4F6E8FA6EECAD2A3AA415EEC418D38EC';

describe('parseRange', () => {
  it('finds suffixes listed with a count above zero, CRLF or LF', () => {
    const r = parseRange(`${B}:1\r\n${A}:10434004\r\n${C}:2`);
    expect(r.has(A)).toBe(true);
    expect(r.has(B)).toBe(true);
    expect(r.has('FFFFF9B93F3F0682250B6CF8331B7EE68FD')).toBe(false);
    expect(parseRange(`${A}:3\n${B}:1\n`).has(A)).toBe(true);
  });

  it('ignores padding lines (count 0), even for the suffix asked about', () => {
    const r = parseRange(`${B}:4\r\n${A}:0\r\n${C}:0`);
    expect(r.has(A)).toBe(false);
    expect(r.has(C)).toBe(false);
    expect(r.has(B)).toBe(true);
  });

  it('matches whole suffixes only, not a piece spanning two lines', () => {
    const r = parseRange(`${B}:4\r\n${C}:1`);
    const spanning = (B + C).slice(10, 45);
    expect(r.has(spanning)).toBe(false);
  });

  it('refuses an answer that is not a range, rather than reading part of it', () => {
    expect(() => parseRange('<html>captive portal</html>')).toThrow(RangeFetchError);
    expect(() => parseRange(`${A}:3\r\nnot a line`)).toThrow(RangeFetchError);
    expect(() => parseRange(`${A.toLowerCase()}:3`)).toThrow(RangeFetchError);
    expect(() => parseRange(`${A}:-1`)).toThrow(RangeFetchError);
    expect(() => parseRange('')).toThrow(RangeFetchError);
  });
});

describe('isRangePrefix', () => {
  it('accepts exactly 5 upper-case hex characters', () => {
    expect(isRangePrefix('5BAA6')).toBe(true);
    expect(isRangePrefix('5baa6')).toBe(false);
    expect(isRangePrefix('5BAA61')).toBe(false);
    expect(isRangePrefix('5BAA')).toBe(false);
  });
});
