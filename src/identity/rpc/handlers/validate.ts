import { invalidArgument } from '../../../shared/errors.js';

/** Request-shape checks shared by the handlers (X1): a clear INVALID_ARGUMENT, never INTERNAL. */
export function required(field: string, value: string, maxLength: number): string {
  if (value.length === 0) throw invalidArgument(field, 'is required');
  if (value.length > maxLength) throw invalidArgument(field, `must be at most ${maxLength} characters`);
  return value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function uuid(field: string, value: string): string {
  if (value.length === 0) throw invalidArgument(field, 'is required');
  if (!UUID.test(value)) throw invalidArgument(field, 'must be a UUID');
  return value.toLowerCase();
}

/** Long enough for any password we accept (the byte cap is checked in the domain). */
export const MAX_PASSWORD_CHARS = 4096;
/** Refresh tokens are 43 characters; access tokens a few hundred. */
export const MAX_TOKEN_CHARS = 4096;
