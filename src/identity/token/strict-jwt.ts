import { KeyObject, sign } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from '../../shared/clock.js';
import { oncePer } from '../../shared/once-per.js';
import { isSigningAlgorithm } from './key-material.js';
import type { SigningKeyStore } from './key-store.js';

/**
 * The one signing and verification path for every JWT we issue; access tokens, MFA challenges and
 * any other typed token differ only in `typ` and their claims. Verification answers `null` for
 * every bad token and does the cheap checks (shape, header allow-list, typ, kid lookup in memory)
 * before any signature work.
 */

/** Our tokens are a few hundred bytes; anything far larger is not ours and not worth parsing. */
const MAX_TOKEN_LENGTH = 8192;
/** RFC 8725 3.10 / 2.7: keys come only from our own set by `kid`; jku, x5u, jwk, x5c and crit are refused by omission. */
const ALLOWED_HEADER_PARAMS = new Set(['alg', 'kid', 'typ']);
/** RFC 7515 4.1.4 puts no limit on kid; ours are 22 characters. */
const MAX_KID_LENGTH = 128;
export const MAX_LEEWAY_SECONDS = 60;
export const DEFAULT_LEEWAY_SECONDS = 30;

export interface StrictVerifyOptions {
  typ: string;
  issuer: string;
  audience: string;
  clock: Clock;
  leewaySeconds: number;
  requiredClaims: string[];
}

/** Checks a leeway setting: docs/security.md T4 caps it at 60 s whatever the configuration says. */
export function checkLeeway(leewaySeconds: number | undefined): number {
  const l = leewaySeconds ?? DEFAULT_LEEWAY_SECONDS;
  if (!Number.isFinite(l) || l < 0 || l > MAX_LEEWAY_SECONDS) {
    throw new RangeError(`clock leeway must be between 0 and ${MAX_LEEWAY_SECONDS} s, got ${l}`);
  }
  return l;
}

/** RFC 9068 4 / RFC 8725 3.11: "at+jwt" and "application/at+jwt" are the same media type. */
const normalizeTyp = (typ: string) => typ.toLowerCase().replace(/^application\//, '');

/**
 * Signs `payload` exactly as given (no builder that would round a fractional iat) with the current
 * key, with the protected header { alg, kid, typ } and nothing else.
 */
export async function signJwt(keys: SigningKeyStore, typ: string, payload: Record<string, unknown>): Promise<string> {
  const { kid, alg, key } = await keys.acquireSigningKey();
  // RFC 7515 compact serialisation, signed synchronously with node:crypto: WebCrypto's sign hops to
  // the libuv pool and back, which costs more than the signature itself on every issued token.
  const input = `${b64url(JSON.stringify({ alg, kid, typ }))}.${b64url(JSON.stringify(payload))}`;
  const signature =
    alg === 'EdDSA'
      ? sign(null, Buffer.from(input), keyObjectOf(key))
      : sign('sha256', Buffer.from(input), { key: keyObjectOf(key), dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const keyObjectOf = oncePer((key: CryptoKey) => KeyObject.from(key));

export async function verifyJwt(keys: SigningKeyStore, token: string, o: StrictVerifyOptions): Promise<JWTPayload | null> {
  // Compact JWS only: a JWE (5 parts) or the JSON serialisation is never one of ours.
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) return null;
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    return null;
  }
  for (const name of Object.keys(header)) if (!ALLOWED_HEADER_PARAMS.has(name)) return null;
  // RFC 8725 3.11 explicit typing: a token of another type never passes, whatever its signature.
  if (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== normalizeTyp(o.typ)) return null;
  // RFC 8725 3.1: the algorithm comes from the key, never from the token; the header must agree.
  if (!isSigningAlgorithm(header.alg)) return null;
  const kid = header.kid;
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH) return null;

  let entry = keys.verificationKey(kid);
  if (!entry) {
    // Only a token that could be live and ours is worth a (rate-limited) trip to the database.
    if (!plausible(token, o)) return null;
    entry = await keys.resolveVerificationKey(kid);
    if (!entry) return null;
  }
  if (entry.alg !== header.alg) return null;

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, entry.key, {
      algorithms: [entry.alg],
      typ: o.typ,
      issuer: o.issuer,
      audience: o.audience,
      currentDate: new Date(o.clock.nowMs()),
      clockTolerance: o.leewaySeconds,
      requiredClaims: o.requiredClaims,
    }));
  } catch {
    return null;
  }
  // jose checks iat only with maxTokenAge; a token "issued" in the future is not one we made.
  if (typeof payload.iat !== 'number' || payload.iat * 1000 > o.clock.nowMs() + o.leewaySeconds * 1000) return null;
  return payload;
}

/** Unverified pre-check (used only to decide whether an unknown kid deserves a key reload). */
function plausible(token: string, o: StrictVerifyOptions): boolean {
  try {
    const p = decodeJwt(token);
    return p.iss === o.issuer && typeof p.exp === 'number' && p.exp * 1000 > o.clock.nowMs() - o.leewaySeconds * 1000;
  } catch {
    return false;
  }
}
