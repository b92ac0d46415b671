import { randomBytes } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { ACCESS_TOKEN_TYP } from './access-token.js';
import type { SigningKeyStore } from './key-store.js';
import { checkLeeway, signJwt, verifyJwt } from './strict-jwt.js';

/** Claims the signer owns; a caller cannot set them. */
const RESERVED = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti']);
/** Our own media types: lower-case, "+jwt" suffix, e.g. "mfa-challenge+jwt". */
const TYP_PATTERN = /^[a-z0-9][a-z0-9.-]*\+jwt$/;

export interface TypedTokenOptions {
  issuer: string;
  audience: string;
  clock: Clock;
  leewaySeconds?: number;
}

export interface IssuedTypedToken {
  token: string;
  jti: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

export type TypedClaims = Record<string, unknown> & { jti: string; iatMs: number; expMs: number };

/**
 * Short-lived signed tokens other than access tokens (MFA challenge, ...). They share the access
 * token keys, so what keeps them apart is the `typ` header (RFC 8725 3.11): each verifier accepts
 * exactly one typ, and `at+jwt` cannot be produced or accepted here.
 */
export class TypedTokens {
  private readonly leewaySeconds: number;

  constructor(
    private readonly keys: SigningKeyStore,
    private readonly o: TypedTokenOptions,
  ) {
    this.leewaySeconds = checkLeeway(o.leewaySeconds);
  }

  async signTyped(typ: string, claims: Record<string, unknown>, ttlSeconds: number): Promise<IssuedTypedToken> {
    checkTyp(typ);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive integer');
    for (const name of Object.keys(claims)) {
      if (RESERVED.has(name)) throw new Error(`claim "${name}" is set by the signer`);
    }
    const nowMs = this.o.clock.nowMs();
    const jti = randomBytes(16).toString('base64url');
    const exp = Math.floor(nowMs / 1000) + ttlSeconds;
    const payload = { ...claims, iss: this.o.issuer, aud: this.o.audience, exp, iat: nowMs / 1000, jti };
    const token = await signJwt(this.keys, typ, payload);
    return { token, jti, issuedAtMs: nowMs, expiresAtMs: exp * 1000 };
  }

  /** The claims of a valid token of exactly this typ, or null. */
  async verifyTyped(typ: string, token: string): Promise<TypedClaims | null> {
    checkTyp(typ);
    const p = await verifyJwt(this.keys, token, {
      typ,
      issuer: this.o.issuer,
      audience: this.o.audience,
      clock: this.o.clock,
      leewaySeconds: this.leewaySeconds,
      requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
    });
    if (!p || typeof p.jti !== 'string' || typeof p.iat !== 'number' || typeof p.exp !== 'number') return null;
    return { ...p, jti: p.jti, iatMs: Math.round(p.iat * 1000), expMs: p.exp * 1000 };
  }
}

function checkTyp(typ: string): void {
  if (!TYP_PATTERN.test(typ) || typ === ACCESS_TOKEN_TYP) throw new Error(`"${typ}" is not a typed-token type`);
}
