import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode } from './base32.js';
import {
  generateTotp,
  generateTotpSecret,
  hotp,
  isWellFormedTotpCode,
  matchStep,
  otpauthUri,
  timeStep,
  type TotpAlgorithm,
} from './totp.js';

// RFC 6238 Appendix B: 8 digits, X = 30 s, T0 = 0, ASCII seeds of the hash's output size.
const SEEDS: Record<TotpAlgorithm, Buffer> = {
  SHA1: Buffer.from('12345678901234567890', 'ascii'),
  SHA256: Buffer.from('12345678901234567890123456789012', 'ascii'),
  SHA512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234', 'ascii'),
};

const VECTORS: Array<[number, string, TotpAlgorithm]> = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1111111111, '67062674', 'SHA256'],
  [1111111111, '99943326', 'SHA512'],
  [1234567890, '89005924', 'SHA1'],
  [1234567890, '91819424', 'SHA256'],
  [1234567890, '93441116', 'SHA512'],
  [2000000000, '69279037', 'SHA1'],
  [2000000000, '90698825', 'SHA256'],
  [2000000000, '38618901', 'SHA512'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

describe('RFC 6238 Appendix B', () => {
  it('has all 18 vectors', () => expect(VECTORS).toHaveLength(18));

  it.each(VECTORS)('T=%i gives %s with %s', (unix, expected, algorithm) => {
    const nowMs = unix * 1000;
    expect(generateTotp(SEEDS[algorithm], nowMs, { digits: 8, algorithm })).toBe(expected);
    // The same vector found through matchStep, at the step the RFC lists (T as a hex counter).
    expect(matchStep(SEEDS[algorithm], expected, nowMs, 0, { digits: 8, algorithm })).toBe(BigInt(Math.floor(unix / 30)));
  });
});

describe('HOTP counter arithmetic (M1)', () => {
  const key = SEEDS.SHA1;

  it('matches RFC 4226 Appendix D', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expect(expected.map((_, i) => hotp(key, BigInt(i)))).toEqual(expected);
  });

  // Expected values from Python's hmac + struct.pack('>Q', counter), an independent encoding.
  it.each([
    [2n ** 32n, '999456'],
    [2n ** 32n + 5n, '250721'],
    [2n ** 40n + 123n, '056741'],
    [2n ** 63n + 7n, '014211'],
  ])('encodes counter %s as 8 bytes, without wrapping at 2^32', (counter, expected) => {
    expect(hotp(key, counter)).toBe(expected);
  });

  it('refuses counters that do not fit in 8 bytes', () => {
    expect(() => hotp(key, -1n)).toThrow(RangeError);
    expect(() => hotp(key, 2n ** 64n)).toThrow(RangeError);
  });

  it('computes steps as BigInt far past 2^32 seconds', () => {
    expect(timeStep(20_000_000_000_000)).toBe(666_666_666n);
    expect(timeStep(2 ** 33 * 1000 * 30, 30)).toBe(2n ** 33n);
    expect(timeStep(2 ** 33 * 1000, 1)).toBe(2n ** 33n);
  });
});

describe('defaults (6 digits, 30 s, SHA-1)', () => {
  it('truncates the RFC vector to its last 6 digits', () => {
    expect(generateTotp(SEEDS.SHA1, 59_000)).toBe('287082');
    expect(generateTotp(SEEDS.SHA1, 1_111_111_109_000)).toBe('081804');
  });

  it('keeps one code for the whole 30-second step', () => {
    expect(generateTotp(SEEDS.SHA1, 60_000)).toBe(generateTotp(SEEDS.SHA1, 89_999));
    expect(generateTotp(SEEDS.SHA1, 89_999)).not.toBe(generateTotp(SEEDS.SHA1, 90_000));
  });

  it('makes 160-bit base32 secrets, each different', () => {
    const a = generateTotpSecret();
    const b = generateTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(a)).toHaveLength(20);
    expect(a).not.toBe(b);
  });
});

describe('matchStep window', () => {
  const secret = base32Encode(SEEDS.SHA1);
  const now = 1_700_000_015_000;
  const step = timeStep(now);
  const codeAt = (s: bigint) => hotp(SEEDS.SHA1, s);

  it('accepts the previous, current and next step and says which', () => {
    expect(matchStep(secret, codeAt(step - 1n), now)).toBe(step - 1n);
    expect(matchStep(secret, codeAt(step), now)).toBe(step);
    expect(matchStep(secret, codeAt(step + 1n), now)).toBe(step + 1n);
  });

  it('refuses two steps away, and ±1 with window 0', () => {
    expect(matchStep(secret, codeAt(step - 2n), now)).toBeNull();
    expect(matchStep(secret, codeAt(step + 2n), now)).toBeNull();
    expect(matchStep(secret, codeAt(step + 1n), now, 0)).toBeNull();
    expect(matchStep(secret, codeAt(step + 2n), now, 2)).toBe(step + 2n);
  });

  it('refuses steps at or before `after` (replay)', () => {
    expect(matchStep(secret, codeAt(step), now, 1, { after: step })).toBeNull();
    expect(matchStep(secret, codeAt(step - 1n), now, 1, { after: step - 1n })).toBeNull();
    expect(matchStep(secret, codeAt(step), now, 1, { after: step - 1n })).toBe(step);
    expect(matchStep(secret, codeAt(step + 1n), now, 1, { after: step })).toBe(step + 1n);
    expect(matchStep(secret, codeAt(step), now, 1, { after: null })).toBe(step);
  });

  it('refuses a code of the wrong length or with other characters', () => {
    const good = codeAt(step);
    for (const bad of ['', good.slice(1), `${good}0`, ` ${good.slice(1)}`, `${good.slice(0, 5)}a`, '１２３４５６', '12 345']) {
      expect(matchStep(secret, bad, now)).toBeNull();
    }
  });
});

describe('code format', () => {
  it('is exactly the configured number of ASCII digits', () => {
    expect(isWellFormedTotpCode('012345')).toBe(true);
    expect(isWellFormedTotpCode('01234567', 8)).toBe(true);
    expect(isWellFormedTotpCode('01234567')).toBe(false);
    expect(isWellFormedTotpCode('12345')).toBe(false);
    expect(isWellFormedTotpCode('12345x')).toBe(false);
    expect(isWellFormedTotpCode('١٢٣٤٥٦')).toBe(false); // Arabic-Indic digits are not \d in ASCII terms
  });
});

describe('otpauth URI', () => {
  it('carries the issuer, account and parameters apps read', () => {
    const uri = otpauthUri({ issuer: 'Latch', account: 'ann+mfa@example.com', secret: 'JBSWY3DPEHPK3PXP' });
    expect(uri).toBe(
      'otpauth://totp/Latch:ann%2Bmfa@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Latch&algorithm=SHA1&digits=6&period=30',
    );
  });

  it('escapes characters that would break the label or the query', () => {
    const uri = new URL(otpauthUri({ issuer: 'My Co', account: 'a:b?c&d@x.test', secret: 'AAAA' }));
    expect(decodeURIComponent(uri.pathname)).toBe('/My Co:a:b?c&d@x.test');
    expect(uri.searchParams.get('issuer')).toBe('My Co');
    expect(uri.searchParams.get('secret')).toBe('AAAA');
  });
});
