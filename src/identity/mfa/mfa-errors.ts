import { LatchError } from '../../shared/errors.js';

/**
 * A wrong, replayed or already used code. At sign-in (CompleteMfa) the caller is not yet
 * authenticated; on a signed-in call (disable, regenerate, confirm) the access token is fine, so
 * the kind is permission_denied, as for a wrong current password, and clients do not drop a
 * good session over a typo.
 */
export const invalidMfaCode = (signedIn: boolean) =>
  new LatchError(signedIn ? 'permission_denied' : 'unauthenticated', 'ERR_INVALID_MFA_CODE', 'the code is not valid');

/** Unknown, expired, consumed or burned challenge: all the same to the caller (M6). */
export const invalidChallenge = () =>
  new LatchError('unauthenticated', 'ERR_INVALID_CHALLENGE', 'the sign-in challenge is not valid; sign in again');

export const tooManyMfaAttempts = (retryAfterMs: number) =>
  new LatchError('resource_exhausted', 'ERR_TOO_MANY_MFA_ATTEMPTS', 'too many wrong codes, try again later', { retryAfterMs });

export const totpAlreadyEnabled = () =>
  new LatchError('failed_precondition', 'ERR_TOTP_ALREADY_ENABLED', 'two-factor authentication is already enabled');

export const totpNotEnabled = () =>
  new LatchError('failed_precondition', 'ERR_TOTP_NOT_ENABLED', 'two-factor authentication is not enabled');

export const enrollmentNotStarted = () =>
  new LatchError('failed_precondition', 'ERR_TOTP_ENROLLMENT_NOT_STARTED', 'start the enrollment first');
