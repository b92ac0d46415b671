import { LatchError } from '../../shared/errors.js';

/** Stable ids for password rejections; the messages are safe to show to the person typing. */
export const passwordTooLong = (field: string, maxBytes: number) =>
  new LatchError('invalid_argument', 'ERR_PASSWORD_TOO_LONG', `password must be at most ${maxBytes} bytes`, {
    field,
  });

export const passwordTooShort = (field: string, minLength: number) =>
  new LatchError(
    'invalid_argument',
    'ERR_PASSWORD_TOO_SHORT',
    `password must be at least ${minLength} characters`,
    { field },
  );

export const passwordCommon = (field: string) =>
  new LatchError('invalid_argument', 'ERR_PASSWORD_COMMON', 'this password is too common', { field });

export const passwordContext = (field: string) =>
  new LatchError(
    'invalid_argument',
    'ERR_PASSWORD_CONTEXT',
    'password must not contain your email name or the service name',
    { field },
  );
