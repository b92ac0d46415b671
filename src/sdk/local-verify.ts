import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { LatchAuthError, type LatchPrincipal } from './principal.js';

export interface LocalVerifierOptions {
  /** Latch's HTTP base URL; the key set is read from `<baseUrl>/.well-known/jwks.json`. */
  baseUrl: string;
  /** Latch's JWT_ISSUER and JWT_AUDIENCE (both "latch" by default). */
  issuer?: string;
  audience?: string;
  /** Least time between two key-set fetches triggered by an unknown kid; default 30 000 ms. */
  cooldownMs?: number;
  /** How long a fetched key set is used before it is fetched again; default 600 000 ms. */
  cacheMaxAgeMs?: number;
  /** Timeout of one key-set fetch; default 2000 ms. */
  timeoutMs?: number;
  /** Clock skew tolerated on exp; default 30 s. */
  clockToleranceSeconds?: number;
  /** Revocations are remembered this long (at least Latch's ACCESS_TOKEN_TTL_SECONDS); default 3600 s. */
  maxTokenLifetimeSeconds?: number;
}

/** Errors that mean "this token is not valid", as opposed to "could not find out". */
const INVALID = new Set<string>([
  errors.JWTExpired.code,
  errors.JWTClaimValidationFailed.code,
  errors.JWTInvalid.code,
  errors.JWSInvalid.code,
  errors.JWSSignatureVerificationFailed.code,
  errors.JOSEAlgNotAllowed.code,
  errors.JOSENotSupported.code,
  errors.JWKSNoMatchingKey.code,
  errors.JWKSMultipleMatchingKeys.code,
]);

/**
 * Verifies access tokens against Latch's published keys instead of asking Latch (docs/sdk.md
 * "Local verification"). The trade-off: a token stays valid here until its exp unless this process
 * hears the sessions_revoked broadcast (give LatchAuth a NATS connection); email and
 * email_verified are not in the token, and a disabled account is not noticed before exp.
 */
export class LocalVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly revokedUsers = new Map<string, { notBeforeMs: number; atMs: number }>();
  private readonly revokedSessions = new Map<string, number>();
  private readonly keepMs: number;

  constructor(private readonly o: LocalVerifierOptions) {
    this.jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', o.baseUrl), {
      cooldownDuration: o.cooldownMs ?? 30_000,
      cacheMaxAge: o.cacheMaxAgeMs ?? 600_000,
      timeoutDuration: o.timeoutMs ?? 2000,
    });
    this.keepMs = (o.maxTokenLifetimeSeconds ?? 3600) * 1000 + 60_000;
  }

  readonly introspect = async (token: string): Promise<LatchPrincipal | null> => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        typ: 'at+jwt',
        issuer: this.o.issuer ?? 'latch',
        audience: this.o.audience ?? 'latch',
        algorithms: ['EdDSA', 'ES256'],
        clockTolerance: this.o.clockToleranceSeconds ?? 30,
        requiredClaims: ['sub', 'exp', 'iat', 'jti', 'sid', 'role', 'amr'],
      }));
    } catch (err) {
      if (err instanceof errors.JOSEError && INVALID.has(err.code)) return null;
      throw new LatchAuthError('unavailable', 'latch_unavailable', 'Latch\'s key set could not be read', { cause: err });
    }
    const principal = toPrincipal(payload);
    return principal && !this.isRevoked(principal, payload) ? principal : null;
  };

  revoked(userId: string, notBeforeMs: number, sessionId?: string): void {
    const now = Date.now();
    this.prune(now);
    if (sessionId) this.revokedSessions.set(sessionId, now);
    else {
      const prev = this.revokedUsers.get(userId);
      this.revokedUsers.set(userId, { notBeforeMs: Math.max(notBeforeMs, prev?.notBeforeMs ?? 0), atMs: now });
    }
  }

  private isRevoked(p: LatchPrincipal, payload: JWTPayload): boolean {
    if (p.sessionId && this.revokedSessions.has(p.sessionId)) return true;
    const user = this.revokedUsers.get(p.userId);
    const iatMs = typeof payload.iat_ms === 'number' ? payload.iat_ms : p.issuedAtMs;
    return user !== undefined && iatMs < user.notBeforeMs;
  }

  private prune(now: number): void {
    for (const [k, v] of this.revokedUsers) if (now - v.atMs > this.keepMs) this.revokedUsers.delete(k);
    for (const [k, at] of this.revokedSessions) if (now - at > this.keepMs) this.revokedSessions.delete(k);
  }
}

function toPrincipal(c: JWTPayload): LatchPrincipal | null {
  const { sub, role, sid, amr, jti, exp, iat } = c;
  if (typeof sub !== 'string' || typeof role !== 'string' || typeof sid !== 'string' || !Array.isArray(amr) || typeof jti !== 'string') return null;
  return {
    userId: sub,
    email: '',
    role,
    scope: typeof c.scope === 'string' ? c.scope : '',
    amr: amr.filter((m): m is string => typeof m === 'string'),
    sessionId: sid,
    clientId: typeof c.client_id === 'string' ? c.client_id : '',
    emailVerified: false,
    passwordMustChange: c.pmc === true,
    jti,
    issuedAtMs: (iat ?? 0) * 1000,
    expiresAtMs: (exp ?? 0) * 1000,
  };
}
