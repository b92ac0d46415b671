import { describe, expect, it } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { normalizeEmail } from './email.js';

function refused(raw: string): LatchError {
  try {
    normalizeEmail(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    const err = e as LatchError;
    expect(err.kind).toBe('invalid_argument');
    expect(err.field).toBe('email');
    return err;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('normalizeEmail', () => {
  it.each([
    ['  Ada.Lovelace@Example.COM ', 'ada.lovelace@example.com'],
    ["o'brien+tag@example.com", "o'brien+tag@example.com"],
    ['Ünïcödé@example.com', 'ünïcödé@example.com'],
    ['ada@Bücher.DE', 'ada@xn--bcher-kva.de'],
    ['ada@xn--bcher-kva.de', 'ada@xn--bcher-kva.de'],
    ['用户@例子.广告', '用户@xn--fsqu00a.xn--4rr70v'],
  ])('%j becomes %j', (raw, want) => {
    expect(normalizeEmail(raw)).toBe(want);
  });

  it('gives composed and decomposed spellings one form', () => {
    const composed = '\u00e4da@example.com';
    const decomposed = 'a\u0308da@example.com';
    expect(composed).not.toBe(decomposed);
    expect(normalizeEmail(decomposed)).toBe(normalizeEmail(composed));
    expect(normalizeEmail('A\u0308DA@EXAMPLE.COM')).toBe(normalizeEmail(composed));
  });

  it.each([
    ['NUL', 'x\u0000y@example.com'],
    ['DEL', 'x\u007fy@example.com'],
    ['a C1 control', 'x\u0085y@example.com'],
    ['zero-width space', 'x\u200by@example.com'],
    ['zero-width joiner', 'x\u200dy@example.com'],
    ['soft hyphen', 'x\u00ady@example.com'],
    ['right-to-left override', 'x\u202ey@example.com'],
    ['byte order mark', 'x\ufeffy@example.com'],
    ['a lone surrogate', 'x\ud800@example.com'],
    ['zero-width space in the domain', 'x@exa\u200bmple.com'],
  ])('refuses %s', (_what, raw) => {
    expect(refused(raw).message).toMatch(/control or invisible/);
  });

  it.each(['ａda@example.com', 'ada@ｅxample.com', 'ﬁle@example.com', 'ada²@example.com'])(
    'refuses the compatibility spelling %j with a clear message',
    (raw) => {
      expect(refused(raw).message).toMatch(/compatibility characters such as fullwidth/);
    },
  );

  it.each([
    ['markup', '<script>@example.com'],
    ['a quoted local part', '"a b"@example.com'],
    ['a space', 'a b@example.com'],
    ['a leading dot', '.ada@example.com'],
    ['a double dot', 'a..da@example.com'],
    ['a non-ASCII symbol', 'ada\u2603@example.com'],
    ['two @', 'a@b@example.com'],
    ['no @', 'ada.example.com'],
    ['an empty local part', '@example.com'],
    ['an empty domain', 'ada@'],
    ['a single-label domain', 'ada@localhost'],
    ['an address literal', 'ada@[192.0.2.1]'],
    ['an IPv4 domain', 'ada@192.0.2.1'],
    ['an underscore in the domain', 'ada@exa_mple.com'],
    ['a leading hyphen in a label', 'ada@-example.com'],
    ['a trailing dot', 'ada@example.com.'],
    ['percent-encoding in the domain', 'ada@%65xample.com'],
    ['a broken A-label', 'ada@xn--zz.com'],
    ['a 64-character label', `ada@${'a'.repeat(64)}.com`],
    ['a 65-octet local part', `${'a'.repeat(65)}@example.com`],
    ['a local part of 33 two-octet letters', `${'ä'.repeat(33)}@example.com`],
    ['a 254-octet domain', `a@${Array.from({ length: 4 }, () => 'b'.repeat(63)).join('.')}.c`],
    ['an empty string', '   '],
  ])('refuses %s', (_what, raw) => {
    refused(raw);
  });

  it('accepts the largest lengths RFC 5321 allows', () => {
    expect(normalizeEmail(`ada@${'a'.repeat(63)}.com`)).toContain('@');
    expect(normalizeEmail(`${'a'.repeat(64)}@example.com`)).toContain('@');
    // 64 + 1 + 189 = 254 octets.
    const domain = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
    expect(normalizeEmail(`${'a'.repeat(64)}@${domain}`)).toHaveLength(254);
    refused(`${'a'.repeat(64)}@${domain.replace('.com', '.comm')}`);
  });

  it('names the field it was given', () => {
    try {
      normalizeEmail('nope', 'ADMIN_EMAIL');
      expect.unreachable();
    } catch (e) {
      expect((e as LatchError).field).toBe('ADMIN_EMAIL');
      expect((e as LatchError).message).toMatch(/^ADMIN_EMAIL: /);
    }
  });
});
