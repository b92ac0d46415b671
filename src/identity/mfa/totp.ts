import { counterToBytes, dynamicTruncate, truncateDigits, type Digits, type HashAlgorithm } from '@otplib/core';
import { crypto as nodeCrypto } from '@otplib/plugin-crypto-node';
import { generateSecret, generateSync, verifySync } from 'otplib';
import { base32Decode } from './base32.js';

/**
 * TOTP (RFC 6238) over HOTP (RFC 4226) through otplib, on node:crypto's HMAC (otplib's Node
 * plugin). Checked against the RFC 6238 Appendix B vectors and two independent implementations
 * (oathtool, pyotp) in the tests.
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

const MAX_COUNTER = (1n << 64n) - 1n;

function otpDigits(digits: number): Digits {
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new RangeError('HOTP digits must be 6 to 8');
  return digits as Digits;
}

function otpAlgorithm(algorithm: TotpAlgorithm): HashAlgorithm {
  return algorithm.toLowerCase() as HashAlgorithm;
}

/**
 * RFC 4226 §5.3, from otplib's own HOTP steps: its `generate` refuses counters past 2^53 - 1,
 * while RFC 4226 counters are 8 bytes, so steps past 2^32 (or 2^53) must not wrap or throw.
 */
export function hotp(key: Uint8Array, counter: bigint, digits = 6, algorithm: TotpAlgorithm = 'SHA1'): string {
  if (counter < 0n || counter > MAX_COUNTER) throw new RangeError('HOTP counter must fit in 8 unsigned bytes');
  const mac = nodeCrypto.hmac(otpAlgorithm(algorithm), key, counterToBytes(counter)) as Uint8Array;
  return truncateDigits(dynamicTruncate(mac), otpDigits(digits));
}

/** RFC 6238 §4.2: T = floor((now - T0) / X), as a BigInt, the type the store keeps steps in. */
export function timeStep(nowMs: number, periodSeconds = 30, t0Seconds = 0): bigint {
  if (!Number.isFinite(nowMs)) throw new RangeError('time must be finite');
  const seconds = BigInt(Math.floor(nowMs / 1000)) - BigInt(t0Seconds);
  // BigInt division truncates toward zero; floor matters only before T0, where no step exists.
  if (seconds < 0n) throw new RangeError('time is before T0');
  return seconds / BigInt(periodSeconds);
}

function otpOptions(key: Uint8Array, p: TotpParams) {
  return {
    secret: key,
    algorithm: otpAlgorithm(p.algorithm),
    digits: otpDigits(p.digits),
    period: p.periodSeconds,
    t0: p.t0Seconds,
    crypto: nodeCrypto,
  };
}

export function generateTotp(key: Uint8Array, nowMs: number, params: Partial<TotpParams> = {}): string {
  const p = { ...DEFAULT_TOTP_PARAMS, ...params };
  timeStep(nowMs, p.periodSeconds, p.t0Seconds); // a RangeError for times without a step, as in matchStep
  return generateSync({ ...otpOptions(key, p), epoch: Math.floor(nowMs / 1000) });
}

/** A fresh secret of TOTP_SECRET_BYTES random bytes, base32 without padding (32 characters). */
export function generateTotpSecret(): string {
  return generateSecret({ length: TOTP_SECRET_BYTES, crypto: nodeCrypto });
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
 * The step within ±window of now whose code equals `code`, or null. Every candidate is verified
 * (otplib compares in constant time), so the answer's timing does not say which step matched.
 * When two steps match (a 6-digit collision), the earliest one still above `after` is taken, so
 * the fewest future steps are used up.
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
  const now = timeStep(nowMs, p.periodSeconds, p.t0Seconds);
  let matched: bigint | null = null;
  // One step per call rather than otplib's epochTolerance and afterTimeStep: those stop at the
  // first match and skip stale steps unhashed (timing would tell which step), and throw when
  // `after` lies beyond the window instead of refusing the code.
  for (let offset = -window; offset <= window; offset++) {
    const step = now + BigInt(offset);
    if (step < 0n) continue;
    const epoch = Number(step) * p.periodSeconds + p.t0Seconds;
    const equal = verifySync({ ...otpOptions(key, p), token: code, epoch }).valid;
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
 * literal in the label, as the format's own examples and most apps write it. Not otplib's
 * generateURI: it escapes `@` and leaves out algorithm, digits and period when they are defaults.
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
