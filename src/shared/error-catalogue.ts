/** The fixed set of RPC codes a LatchError can carry (there are no user-defined codes). */
export type ErrorKind =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'unimplemented'
  | 'internal';

/**
 * Every error id Latch puts on the wire (the `latch-error-id` trailer) or into its logs, once,
 * with the kind(s) it is thrown with and what it means. Clients switch on these ids, so an id is
 * never reused for another meaning. docs/errors.md is rendered from this table
 * (`npx tsx scripts/errors-doc.ts`); error-catalogue.test.ts fails when code under src/ names an
 * id missing here, when an id here is no longer used, or when docs/errors.md is out of date.
 */
export interface ErrorEntry {
  /** The kinds (wire codes) the id is thrown with; more than one only where the caller's situation decides. */
  kinds: readonly [ErrorKind, ...ErrorKind[]];
  meaning: string;
}

export const errorCatalogue = {
  // Requests and authentication (any method)
  ERR_INVALID_ARGUMENT: { kinds: ['invalid_argument'], meaning: 'A request field is missing or malformed; the message names the field.' },
  ERR_UNDECODABLE_REQUEST: { kinds: ['invalid_argument'], meaning: 'The request body is not a valid message of the method\'s request type.' },
  ERR_UNREADABLE_REQUEST: { kinds: ['invalid_argument'], meaning: 'The request body could not be read to its end (truncated or broken stream).' },
  ERR_MESSAGE_TOO_LARGE: { kinds: ['resource_exhausted'], meaning: 'The request message is larger than the 64 KiB limit.' },
  ERR_MISSING_CREDENTIALS: { kinds: ['unauthenticated'], meaning: 'The method needs an `authorization` header and none was sent.' },
  ERR_INVALID_AUTH_SCHEME: { kinds: ['unauthenticated'], meaning: 'The `authorization` header does not use the Bearer scheme.' },
  ERR_INVALID_ACCESS_TOKEN: { kinds: ['unauthenticated'], meaning: 'The access token is invalid, expired or revoked, or its user is disabled.' },
  ERR_ADMIN_REQUIRED: { kinds: ['permission_denied'], meaning: 'The method needs the admin role.' },
  ERR_PASSWORD_CHANGE_REQUIRED: { kinds: ['failed_precondition'], meaning: 'The user must change their password before calling anything but ChangePassword, GetCurrentUser, Logout and LogoutAll.' },
  ERR_UNIMPLEMENTED: { kinds: ['unimplemented'], meaning: 'The method is declared in the contract but not served in this version.' },
  ERR_INTERNAL: { kinds: ['internal'], meaning: 'An unexpected server fault; the details are in the server log only.' },

  // Sign-up, sign-in and passwords
  ERR_SIGNUP_DISABLED: { kinds: ['permission_denied'], meaning: 'Register is turned off (SIGNUP_ENABLED=false).' },
  ERR_TOO_MANY_SIGNUPS: { kinds: ['resource_exhausted'], meaning: 'Too many registrations from this client address; wait for `retry-after`.' },
  ERR_EMAIL_TAKEN: { kinds: ['already_exists'], meaning: 'An account with this email already exists.' },
  ERR_INVALID_CREDENTIALS: { kinds: ['unauthenticated'], meaning: 'The email or password is wrong, or the account is disabled (one answer for all three).' },
  ERR_TOO_MANY_ATTEMPTS: { kinds: ['resource_exhausted'], meaning: 'Too many failed password checks for this account, address or pair; wait for `retry-after`.' },
  ERR_WRONG_PASSWORD: { kinds: ['permission_denied'], meaning: 'The current password given to confirm a change is wrong.' },
  ERR_HASHING_BUSY: { kinds: ['unavailable'], meaning: 'Password hashing is at capacity; try again after `retry-after`.' },
  ERR_PASSWORD_TOO_SHORT: { kinds: ['invalid_argument'], meaning: 'The new password is shorter than PASSWORD_MIN_LENGTH characters.' },
  ERR_PASSWORD_TOO_LONG: { kinds: ['invalid_argument'], meaning: 'The password is longer than PASSWORD_MAX_BYTES bytes.' },
  ERR_PASSWORD_COMMON: { kinds: ['invalid_argument'], meaning: 'The new password is on the blocklist of common or predictable passwords.' },
  ERR_PASSWORD_CONTEXT: { kinds: ['invalid_argument'], meaning: 'The new password contains the email\'s name or the service name.' },
  ERR_PASSWORD_BREACHED: { kinds: ['invalid_argument'], meaning: 'The new password appeared in a data breach (HIBP range API); choose another one.' },
  ERR_BREACH_CHECK_UNAVAILABLE: { kinds: ['unavailable'], meaning: 'The breach check of a new password could not reach the HIBP range API and HIBP_FAILURE_MODE=closed; try again later.' },

  // Sessions and tokens
  ERR_INVALID_REFRESH_TOKEN: { kinds: ['unauthenticated'], meaning: 'The refresh token is unknown, expired or its session has ended.' },
  ERR_REFRESH_TOKEN_REUSED: { kinds: ['unauthenticated'], meaning: 'An already used refresh token was presented after the grace window; its session has been ended.' },
  ERR_REFRESH_COOKIE_ORIGIN: { kinds: ['permission_denied'], meaning: 'A request opting into the browser refresh cookie (`latch-refresh-cookie` header) came from an Origin not in CORS_ORIGINS, or without one.' },
  ERR_SESSION_NOT_FOUND: { kinds: ['not_found'], meaning: 'The user has no active session with this id.' },
  ERR_SIGNING_KEYS_UNAVAILABLE: { kinds: ['unavailable'], meaning: 'No signing key is ready or the keys cannot be loaded; try again.' },
  ERR_SIGNING_KEY_UNREADABLE: { kinds: ['failed_precondition'], meaning: 'A stored signing key cannot be decrypted with SECRET_ENCRYPTION_KEY (start-up).' },

  // Password reset
  ERR_TOO_MANY_RESET_REQUESTS: { kinds: ['resource_exhausted'], meaning: 'Too many RequestPasswordReset calls from this client address; wait for `retry-after`.' },
  ERR_RESET_TOKEN_INVALID: { kinds: ['invalid_argument'], meaning: 'The reset token is malformed, was never issued, or its account is disabled.' },
  ERR_RESET_TOKEN_USED: { kinds: ['invalid_argument'], meaning: 'The reset token has already been used; request a new password reset.' },
  ERR_RESET_TOKEN_SUPERSEDED: { kinds: ['invalid_argument'], meaning: 'A newer reset was requested for the account; only the newest link works.' },
  ERR_RESET_TOKEN_EXPIRED: { kinds: ['invalid_argument'], meaning: 'The reset token is past its lifetime (`PASSWORD_RESET_TTL_SECONDS`); request a new password reset.' },

  // Email verification
  ERR_VERIFICATION_TOKEN_INVALID: { kinds: ['invalid_argument'], meaning: 'The verification token is malformed, was never issued, or its account is disabled.' },
  ERR_VERIFICATION_TOKEN_USED: { kinds: ['invalid_argument'], meaning: 'The verification token has already been used; a signed-in user can ask for a new one with ResendVerificationEmail.' },
  ERR_VERIFICATION_TOKEN_SUPERSEDED: { kinds: ['invalid_argument'], meaning: 'A newer verification email was sent for the account; only the newest link works.' },
  ERR_VERIFICATION_TOKEN_EXPIRED: { kinds: ['invalid_argument'], meaning: 'The verification token is past its lifetime (`EMAIL_VERIFICATION_TTL_SECONDS`); ask for a new one with ResendVerificationEmail.' },
  ERR_VERIFICATION_TOKEN_EMAIL_CHANGED: { kinds: ['invalid_argument'], meaning: 'The verification link was sent to an address the account no longer has; ask for a new one with ResendVerificationEmail.' },
  ERR_EMAIL_ALREADY_VERIFIED: { kinds: ['failed_precondition'], meaning: 'ResendVerificationEmail was called for an account whose address is already verified.' },
  ERR_TOO_MANY_VERIFICATION_EMAILS: { kinds: ['resource_exhausted'], meaning: 'The account asked for more verification emails than EMAIL_VERIFICATION_MAX_PER_USER per window; wait for `retry-after`.' },
  ERR_EMAIL_NOT_VERIFIED: { kinds: ['failed_precondition'], meaning: 'REQUIRE_VERIFIED_EMAIL=true and the account\'s address is not verified: sign-in is refused after the correct password; a new verification email is sent when no earlier link still works, within the per-account limit.' },

  // Second factor
  ERR_INVALID_MFA_CODE: { kinds: ['unauthenticated', 'permission_denied'], meaning: 'The TOTP or backup code is wrong: unauthenticated while signing in, permission denied for a signed-in user.' },
  ERR_INVALID_CHALLENGE: { kinds: ['unauthenticated'], meaning: 'The sign-in challenge is unknown, expired, used up or burned; sign in again.' },
  ERR_TOO_MANY_MFA_ATTEMPTS: { kinds: ['resource_exhausted'], meaning: 'Too many wrong codes for this user; wait for `retry-after`.' },
  ERR_TOTP_ALREADY_ENABLED: { kinds: ['failed_precondition'], meaning: 'Two-factor authentication is already enabled.' },
  ERR_TOTP_NOT_ENABLED: { kinds: ['failed_precondition'], meaning: 'Two-factor authentication is not enabled.' },
  ERR_TOTP_ENROLLMENT_NOT_STARTED: { kinds: ['failed_precondition'], meaning: 'ConfirmTotpEnrollment was called without BeginTotpEnrollment first.' },

  // Introspection and administration
  ERR_CALLER_UNAUTHENTICATED: { kinds: ['unauthenticated'], meaning: 'Introspect needs a valid introspection client credential.' },
  ERR_BACKEND_UNAVAILABLE: { kinds: ['unavailable'], meaning: 'Introspect could not read the user\'s state; try again (never reported as `active: false`).' },
  ERR_USER_NOT_FOUND: { kinds: ['not_found'], meaning: 'No user has this id.' },
  ERR_LAST_ADMIN: { kinds: ['failed_precondition'], meaning: 'The change would leave no active admin.' },

  // Dependencies and start-up
  ERR_DATABASE_UNAVAILABLE: { kinds: ['unavailable'], meaning: 'PostgreSQL is down, unreachable or too slow; try again after `retry-after`.' },
  ERR_EMBEDDED_POSTGRES: { kinds: ['unavailable'], meaning: 'The embedded PostgreSQL could not be started, or an orphaned one could not be stopped (start-up).' },
  ERR_EMBEDDED_BINARIES_UNREACHABLE: { kinds: ['failed_precondition'], meaning: 'The embedded PostgreSQL\'s user cannot reach its binaries (start-up).' },
  ERR_DATA_DIR_NOT_ENTERABLE: { kinds: ['failed_precondition'], meaning: 'The embedded PostgreSQL\'s user cannot enter a folder above DATA_DIR (start-up).' },
  ERR_DATA_DIR_LOCKED: { kinds: ['failed_precondition', 'unavailable'], meaning: 'DATA_DIR is in use by another process, or its lock could not be taken (start-up).' },
  ERR_LOCAL_SECRET_EMPTY: { kinds: ['failed_precondition'], meaning: 'A generated secret file under DATA_DIR is empty (start-up).' },
  ERR_EVENT_UNDECODABLE: { kinds: ['internal'], meaning: 'An outbox event could not be decoded by the in-process publisher; it stays in the outbox.' },
  ERR_EVENT_UNKNOWN: { kinds: ['internal'], meaning: 'An outbox event has a subject the in-process publisher does not know.' },
} as const satisfies Record<`ERR_${string}`, ErrorEntry>;

export type ErrorId = keyof typeof errorCatalogue;
