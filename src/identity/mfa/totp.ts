import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { base32Decode, base32Encode } from './base32.js';

/**
 * TOTP (RFC 6238) over HOTP (RFC 4226), on node:crypto's HMAC. The algorithm is a dozen lines and
 * is checked against the RFC 6238 Appendix B vectors and two independent implementations
 * (oathtool, pyotp) in the tests; a library would add packages without removing any of that.
 */
export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface TotpParams {
  algorithm: TotpAlgorithm;
  digits: number;
  periodSeconds: number;
  /** RFC 6238 §4.1 T0, the Unix time to start counting steps from. */
  t0Seconds: number;
}

/** What authenticator apps assume when the otpauth URI says nothing else (M1). */
export const DEFAULT_TOTP_PARAMS: TotpParams = { algorithm: 'SHA1', digits: 6, periodSeconds: 30, t0Seconds: 0 };

/** 160 bits: the HMAC-SHA1 output size, which RFC 4226 §4 R6 recommends (M2). */
export const TOTP_SECRET_BYTES = 20;

const HMAC_NAME: Record<TotpAlgorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };
const MAX_COUNTER = (1n << 64n) - 1n;

/**
 * RFC 4226 §5.3. The counter is a BigInt written as 8 bytes big-endian, so steps past 2^32
 * (year 6053 at 30 s, or sooner with short periods) do not wrap as 32-bit arithmetic would.
 */
export function hotp(key: Uint8Array, counter: bigint, digits = 6, algorithm: TotpAlgorithm = 'SHA1'): string {
  if (counter < 0n || counter > MAX_COUNTER) throw new RangeError('HOTP counter must fit in 8 unsigned bytes');
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new RangeError('HOTP digits must be 6 to 8');
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(counter);
  const mac = createHmac(HMAC_NAME[algorithm], key).update(msg).digest();
  // Dynamic truncation: the low nibble of the last byte picks 4 bytes; the top bit is masked.
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** RFC 6238 §4.2: T = floor((now - T0) / X), as a BigInt. */
export function timeStep(nowMs: number, periodSeconds = 30, t0Seconds = 0): bigint {
  if (!Number.isFinite(nowMs)) throw new RangeError('time must be finite');
  const seconds = BigInt(Math.floor(nowMs / 1000)) - BigInt(t0Seconds);
  // BigInt division truncates toward zero; floor matters only before T0, where no step exists.
  if (seconds < 0n) throw new RangeError('time is before T0');
  return seconds / BigInt(periodSeconds);
}

export function generateTotp(key: Uint8Array, nowMs: number, params: Partial<TotpParams> = {}): string {
  const p = { ...DEFAULT_TOTP_PARAMS, ...params };
  return hotp(key, timeStep(nowMs, p.periodSeconds, p.t0Seconds), p.digits, p.algorithm);
}

/** A fresh secret of TOTP_SECRET_BYTES random bytes, base32 without padding (32 characters). */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(TOTP_SECRET_BYTES));
}

/** Exactly `digits` ASCII digits; callers strip the spaces apps show in the middle first. */
export function isWellFormedTotpCode(code: string, digits = 6): boolean {
  return code.length === digits && /^[0-9]+$/.test(code);
}

export interface MatchOptions extends Partial<TotpParams> {
  /**
   * The last step already accepted for this secret: only later steps can match, so a code is
   * good once (RFC 6238 §5.2). The caller still has to record the result atomically.
   */
  after?: bigint | null;
}

/**
 * The step within ±window of now whose code equals `code`, or null. Every candidate is computed
 * and compared in constant time, so the answer's timing does not say which step matched. When
 * two steps match (a 6-digit collision), the earliest one still above `after` is taken, so the
 * fewest future steps are used up.
 */
export function matchStep(
  secret: string | Uint8Array,
  code: string,
  nowMs: number,
  window = 1,
  options: MatchOptions = {},
): bigint | null {
  const p = { ...DEFAULT_TOTP_PARAMS, ...options };
  if (!Number.isInteger(window) || window < 0 || window > 10) throw new RangeError('window must be 0 to 10 steps');
  if (!isWellFormedTotpCode(code, p.digits)) return null;
  const key = typeof secret === 'string' ? base32Decode(secret) : secret;
  const given = Buffer.from(code, 'ascii');
  const now = timeStep(nowMs, p.periodSeconds, p.t0Seconds);
  let matched: bigint | null = null;
  for (let offset = -window; offset <= window; offset++) {
    const step = now + BigInt(offset);
    if (step < 0n) continue;
    const equal = timingSafeEqual(Buffer.from(hotp(key, step, p.digits, p.algorithm), 'ascii'), given);
    const fresh = options.after === undefined || options.after === null || step > options.after;
    if (equal && fresh && matched === null) matched = step;
  }
  return matched;
}

export interface OtpauthUriInput {
  issuer: string;
  account: string;
  secret: string;
  params?: Partial<TotpParams>;
}

/**
 * Key URI Format (Google Authenticator wiki): otpauth://totp/Issuer:account?secret=…&issuer=…
 * The issuer is both in the label (older apps) and the parameter (newer ones). `@` stays
 * literal in the label, as the format's own examples and most apps write it.
 */
export function otpauthUri(input: OtpauthUriInput): string {
  const p = { ...DEFAULT_TOTP_PARAMS, ...input.params };
  const label = `${encodeURIComponent(input.issuer)}:${encodeURIComponent(input.account).replace(/%40/g, '@')}`;
  // encodeURIComponent rather than URLSearchParams: the latter writes spaces as "+", which
  // some authenticator apps show literally.
  const query = [
    ['secret', input.secret],
    ['issuer', input.issuer],
    ['algorithm', p.algorithm],
    ['digits', String(p.digits)],
    ['period', String(p.periodSeconds)],
  ]
    .map(([k, v]) => `${k}=${encodeURIComponent(v!)}`)
    .join('&');
  return `otpauth://totp/${label}?${query}`;
}
