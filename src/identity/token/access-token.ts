import { randomBytesPooled } from '../../shared/random-pool.js';
import type { Clock } from '../../shared/clock.js';
import type { SigningKeyStore } from './key-store.js';
import { checkLeeway, signJwt, verifyJwt } from './strict-jwt.js';
import type { MaybePromise } from '../../shared/maybe-promise.js';
import { VerifiedTokenCache } from './verified-token-cache.js';

/** RFC 9068 2.1: the media type of JWT access tokens. */
export const ACCESS_TOKEN_TYP = 'at+jwt';
export const DEFAULT_CLIENT_ID = 'latch';

/** RFC 9068 2.2 required claims, plus ours (role, sid, amr). */
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'client_id', 'role', 'sid', 'amr'];

export interface AccessTokenInput {
  userId: string;
  role: string;
  sessionId: string;
  amr: string[];
  passwordMustChange: boolean;
  clientId?: string;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

export interface VerifiedAccessToken {
  sub: string;
  role: string;
  sid: string;
  amr: string[];
  passwordMustChange: boolean;
  jti: string;
  /** Millisecond precision: compared with the user's tokens_valid_after. */
  iatMs: number;
  expMs: number;
  iss: string;
  aud: string;
  clientId: string;
}

export interface AccessTokenOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clock: Clock;
  /** Clock skew tolerated on exp/nbf; at most 60, default 30 (docs/security.md T4). */
  leewaySeconds?: number;
  /** Verified tokens remembered until their exp (0 disables); see verified-token-cache.ts. */
  cacheSize?: number;
}

/** Issues and verifies JWT access tokens (RFC 9068 profile, RFC 8725 practices). */
export class AccessTokens {
  private readonly leewaySeconds: number;
  private readonly verified: VerifiedTokenCache<VerifiedAccessToken>;

  constructor(
    private readonly keys: SigningKeyStore,
    private readonly o: AccessTokenOptions,
  ) {
    this.leewaySeconds = checkLeeway(o.leewaySeconds);
    this.verified = new VerifiedTokenCache(o.cacheSize ?? 0);
    if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive integer');
  }

  async issue(input: AccessTokenInput): Promise<IssuedAccessToken> {
    const nowMs = this.o.clock.nowMs();
    const jti = randomBytesPooled(16).toString('base64url');
    const exp = Math.floor(nowMs / 1000) + this.o.ttlSeconds;
    const payload: Record<string, unknown> = {
      iss: this.o.issuer,
      sub: input.userId,
      aud: this.o.audience,
      exp,
      // Whole seconds: strict verifiers (e.g. PyJWT without leeway) reject a fractional iat that
      // lies in "their" future until the next second starts.
      iat: Math.floor(nowMs / 1000),
      // Revocation compares the issue instant with tokens_valid_after in milliseconds, so a token
      // minted just after a revocation (ChangePassword's new session) stays valid and one minted
      // just before it does not. A private claim keeps that precision without bending iat.
      iat_ms: nowMs,
      jti,
      client_id: input.clientId ?? DEFAULT_CLIENT_ID,
      role: input.role,
      sid: input.sessionId,
      amr: input.amr,
    };
    if (input.passwordMustChange) payload.pmc = true;
    const token = await signJwt(this.keys, ACCESS_TOKEN_TYP, payload);
    return { token, jti, issuedAtMs: nowMs, expiresAtMs: exp * 1000 };
  }

  /**
   * The claims of a valid access token, or null for any token that is not one (never throws on
   * attacker input). Throws LatchError `unavailable` only when the kid is unknown and the key table
   * cannot be read, since "cannot tell" must not become "inactive".
   */
  verify(token: string): MaybePromise<VerifiedAccessToken | null> {
    // A remembered token is answered now, without a promise (maybe-promise.ts).
    const hit = this.verified.get(token, this.o.clock.nowMs());
    if (hit) return hit;
    return this.verifyAndRemember(token);
  }

  private async verifyAndRemember(token: string): Promise<VerifiedAccessToken | null> {
    const result = await this.verifyUncached(token);
    if (result) this.verified.set(token, result);
    return result;
  }

  private async verifyUncached(token: string): Promise<VerifiedAccessToken | null> {
    const p = await verifyJwt(this.keys, token, {
      typ: ACCESS_TOKEN_TYP,
      issuer: this.o.issuer,
      audience: this.o.audience,
      clock: this.o.clock,
      leewaySeconds: this.leewaySeconds,
      requiredClaims: REQUIRED_CLAIMS,
    });
    if (!p) return null;
    const { sub, jti, iat, iat_ms: iatMs, exp, iss, role, sid, amr, client_id: clientId, pmc } = p as Record<string, unknown>;
    if (!nonEmpty(sub) || !nonEmpty(jti) || !nonEmpty(iss) || !nonEmpty(role) || !nonEmpty(sid) || !nonEmpty(clientId)) {
      return null;
    }
    if (typeof iat !== 'number' || typeof exp !== 'number') return null;
    if (iatMs !== undefined && (typeof iatMs !== 'number' || Math.floor(iatMs / 1000) !== iat)) return null;
    if (!Array.isArray(amr) || !amr.every((m) => typeof m === 'string')) return null;
    if (pmc !== undefined && pmc !== true) return null;
    return {
      sub,
      role,
      sid,
      amr: amr as string[],
      passwordMustChange: pmc === true,
      jti,
      iatMs: typeof iatMs === 'number' ? iatMs : iat * 1000,
      expMs: exp * 1000,
      iss,
      aud: this.o.audience,
      clientId,
    };
  }
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
