/** The verified caller of a request, as Latch vouched for it (introspection) or as its signed token says (local mode). */
export interface LatchPrincipal {
  /** The user id (the token's `sub`). */
  userId: string;
  /** Empty in local-verification mode: the access token does not carry it. */
  email: string;
  role: string;
  scope: string;
  /** Authentication methods of the session, e.g. ["pwd"] or ["pwd", "otp"]. */
  amr: string[];
  /** The session the token belongs to; undefined when the token does not say. */
  sessionId?: string;
  clientId: string;
  /** Always false in local-verification mode: the access token does not carry it. */
  emailVerified: boolean;
  passwordMustChange: boolean;
  jti: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

/** Why a request was refused; each maps to one status on every transport. */
export type RefusalReason =
  | 'no_token'
  | 'inactive_token'
  | 'wrong_role'
  | 'second_factor_required'
  | 'email_not_verified'
  | 'password_must_change';

/** Connect/gRPC code names, with their HTTP status. */
export type LatchFailureCode = 'unauthenticated' | 'permission_denied' | 'unavailable';

export const HTTP_STATUS: Record<LatchFailureCode, number> = {
  unauthenticated: 401,
  permission_denied: 403,
  unavailable: 503,
};

/**
 * Thrown (or answered) when a request may not proceed: the token is missing or not active (unauthenticated),
 * the policy refuses it (permission_denied), or Latch cannot be asked (unavailable; never treated as anonymous).
 */
export class LatchAuthError extends Error {
  constructor(
    readonly code: LatchFailureCode,
    readonly reason: RefusalReason | 'latch_unavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LatchAuthError';
  }
}
