import type { ErrorId, ErrorKind } from './error-catalogue.js';

export type { ErrorKind } from './error-catalogue.js';

export interface LatchErrorOptions {
  cause?: unknown;
  /** For resource_exhausted / unavailable: when the caller may try again. */
  retryAfterMs?: number;
  /** For invalid_argument: the request field at fault. */
  field?: string;
}

/**
 * The one error type domain code throws. `kind` is one of a fixed set of RPC codes (there are no
 * user-defined codes); `id` is a stable string callers and tests can switch on; `message` is safe
 * to show to the caller. The `cause` is for logs only and never reaches the wire.
 * Exactly one module (src/identity/rpc/pipeline/error-map.ts) turns these into wire errors.
 * Every id is listed, with its kind and meaning, in error-catalogue.ts.
 */
export class LatchError extends Error {
  override readonly name = 'LatchError';
  readonly retryAfterMs?: number;
  readonly field?: string;

  constructor(
    readonly kind: ErrorKind,
    readonly id: string,
    message: string,
    options: LatchErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
    this.field = options.field;
  }
}

export const invalidArgument = (field: string, message: string) =>
  new LatchError('invalid_argument', 'ERR_INVALID_ARGUMENT', `${field}: ${message}`, { field });

export const unavailable = (id: ErrorId, message: string, cause?: unknown) =>
  new LatchError('unavailable', id, message, { cause });

export const isLatchError = (e: unknown): e is LatchError => e instanceof LatchError;
