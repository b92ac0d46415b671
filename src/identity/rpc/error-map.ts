import { Code, ConnectError } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { RetryInfoSchema } from '../../../gen/google/rpc/error_details_pb.js';
import { LatchError, type ErrorKind } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

/**
 * The one place where errors become wire errors (and where their log level is chosen). Both
 * transports see the same ConnectError: connect-node serialises it itself, grpc-adapter.ts
 * turns it into a grpc-js status with the same numeric code.
 */

/** Response metadata carrying LatchError.id, so clients can switch on a stable string. */
export const errorIdHeader = 'latch-error-id';
/** Seconds, as in HTTP Retry-After (RFC 9110 §10.2.3). */
export const retryAfterHeader = 'retry-after';

export const INTERNAL_MESSAGE = 'internal error';

const codeByKind: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/**
 * Server faults are errors, pressure and dependency outages are warnings, and everything the
 * caller did wrong is debug: a flood of bad logins must not flood the error log.
 */
export function logLevelFor(code: Code | undefined): LogLevel {
  switch (code) {
    case undefined:
      return 'info';
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
      return 'error';
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.ResourceExhausted:
      return 'warn';
    default:
      return 'debug';
  }
}

function fromLatchError(err: LatchError): ConnectError {
  const code = codeByKind[err.kind] ?? Code.Internal;
  const metadata = new Headers({ [errorIdHeader]: err.id });
  const details = [];
  if (err.retryAfterMs !== undefined && Number.isFinite(err.retryAfterMs) && err.retryAfterMs > 0) {
    const ms = Math.ceil(err.retryAfterMs);
    metadata.set(retryAfterHeader, String(Math.ceil(ms / 1000)));
    details.push({
      desc: RetryInfoSchema,
      value: create(RetryInfoSchema, {
        retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 },
      }),
    });
  }
  // An internal LatchError's message was written for us, not for the caller.
  const message = code === Code.Internal ? INTERNAL_MESSAGE : err.message;
  return new ConnectError(message, code, metadata, details);
}

export function toConnectError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof LatchError) {
    const out = fromLatchError(err);
    const level = logLevelFor(out.code);
    if (logger.isLevelEnabled(level)) {
      // The stack of a caller's mistake is noise; a cause (or a server fault) is what operators need.
      const withStack = err.cause !== undefined || level === 'error';
      logger[level]({ errorId: err.id, kind: err.kind, ...(withStack ? { err: err.cause ?? err } : {}) }, 'rpc error');
    }
    return out;
  }
  if (err instanceof ConnectError) {
    // Already a wire error (from connect itself, a deadline, or a downstream client).
    const level = logLevelFor(err.code);
    if (logger.isLevelEnabled(level)) logger[level]({ code: Code[err.code], err }, 'rpc error');
    return err;
  }
  logger.error({ err }, 'unexpected error in rpc handler');
  return new ConnectError(INTERNAL_MESSAGE, Code.Internal, { [errorIdHeader]: 'ERR_INTERNAL' });
}
