import { LatchError } from '../../shared/errors.js';
import { andThen, type MaybePromise } from '../../shared/maybe-promise.js';
import type { AccessTokens, VerifiedAccessToken } from '../token/access-token.js';
import type { UserState, UserStateCache } from './user-state-cache.js';

export interface ActiveToken {
  active: true;
  sub: string;
  email: string;
  role: 'user' | 'admin';
  expMs: number;
  iatMs: number;
  iss: string;
  aud: string;
  jti: string;
  clientId: string;
  sessionId: string;
  passwordMustChange: boolean;
  amr: string[];
  /** Of the user state the answer was made from; not part of the Introspect response. */
  createdAtMs: number;
  totpEnabled: boolean;
  /** The user's current state (IntrospectResponse.email_verified). */
  emailVerified: boolean;
}

export type Introspection = ActiveToken | { active: false };

const INACTIVE = Object.freeze({ active: false as const });

/**
 * "Who is this token?" — signature and claims first (no I/O), then the subject's current state:
 * disabled accounts, tokens issued before the user's tokens_valid_after and tokens of a session
 * ended on its own (their `sid`, docs/security.md R8) are inactive. The same check authenticates callers
 * of our own user-level RPCs.
 */
export class IntrospectionService {
  /**
   * The verified-token cache hands back the same claims object for a token and the user cache the
   * same state object until it reloads, so while neither changed the answer is the same object.
   * isLive runs before the lookup on every call, so a reloaded state that revokes the token's
   * session is seen even while an answer for the old state is remembered.
   */
  private readonly answers = new WeakMap<VerifiedAccessToken, { state: UserState; answer: ActiveToken }>();

  constructor(
    private readonly tokens: AccessTokens,
    private readonly users: UserStateCache,
  ) {}

  /** Answered now when both the token and its user are in memory, as on most calls (maybe-promise.ts). */
  introspect(token: string): MaybePromise<Introspection> {
    if (token.length === 0 || token.length > 4096) return INACTIVE;
    return andThen(this.tokens.verify(token), (claims) => (claims ? andThen(this.users.get(claims.sub), (state) => this.answer(claims, state)) : INACTIVE));
  }

  private answer(claims: VerifiedAccessToken, state: UserState | null): Introspection {
    if (!isLive(claims, state)) return INACTIVE;
    const known = this.answers.get(claims);
    if (known && known.state === state) return known.answer;
    const answer: ActiveToken = {
      active: true,
      sub: claims.sub,
      email: state!.email,
      role: state!.role,
      expMs: claims.expMs,
      iatMs: claims.iatMs,
      iss: claims.iss,
      aud: claims.aud,
      jti: claims.jti,
      clientId: claims.clientId,
      sessionId: claims.sid,
      passwordMustChange: state!.passwordMustChange,
      amr: claims.amr,
      createdAtMs: state!.createdAtMs,
      totpEnabled: state!.totpEnabled,
      emailVerified: state!.emailVerified,
    };
    this.answers.set(claims, { state: state!, answer });
    return answer;
  }

  /** For the RPC pipeline: an active access token or UNAUTHENTICATED (thrown now or rejected later). */
  authenticate(token: string): MaybePromise<ActiveToken> {
    return andThen(this.introspect(token), activeOrThrow);
  }
}

function activeOrThrow(result: Introspection): ActiveToken {
  if (!result.active) {
    throw new LatchError('unauthenticated', 'ERR_INVALID_ACCESS_TOKEN', 'access token is invalid, expired or revoked');
  }
  return result;
}

function isLive(claims: VerifiedAccessToken, state: UserState | null): boolean {
  if (!state || state.disabled) return false;
  // By session, not by instant: a refresh racing the logout may mint a token after revoked_at.
  if (state.revokedSessions.has(claims.sid)) return false;
  // The issue instant in milliseconds (iat_ms): tokens minted at or after a revocation stay valid.
  return claims.iatMs >= state.tokensValidAfterMs;
}
