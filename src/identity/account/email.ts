import { invalidArgument } from '../../shared/errors.js';

/** RFC 5321 caps a path at 256 octets, so an address is at most 254 characters. */
const MAX_EMAIL_LENGTH = 254;
// Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is the mail's job.
const EMAIL_SHAPE = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/;

/** Trimmed and lower-cased; the column is citext as well, so lookups ignore case either way. */
export function normalizeEmail(raw: string, field = 'email'): string {
  const email = raw.trim().toLowerCase();
  if (email.length === 0) throw invalidArgument(field, 'is required');
  if (email.length > MAX_EMAIL_LENGTH) throw invalidArgument(field, `must be at most ${MAX_EMAIL_LENGTH} characters`);
  if (!EMAIL_SHAPE.test(email)) throw invalidArgument(field, 'is not an email address');
  return email;
}
