import { Code, ConnectError } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { RetryInfoSchema } from '../../../gen/google/rpc/error_details_pb.js';
import { LatchError, type ErrorKind } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/logger.js';
import { databaseOutage } from '../../persistence/database-outage.js';

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

/** How long a caller should wait after a database outage before trying again. */
export const DATABASE_RETRY_AFTER_MS = 1000;

/**
 * A database that is down or not answering in time is UNAVAILABLE with retry info
 * (docs/security.md I3, I5), never INTERNAL: domain code lets driver errors through, so they are recognised here, once.
 * An `internal` LatchError wrapping such a failure is the same outage.
 */
function databaseOutageOf(err: unknown): MappedError | undefined {
  if (err instanceof ConnectError || (err instanceof LatchError && err.kind !== 'internal')) return undefined;
  const reason = databaseOutage(err);
  if (reason === undefined) return undefined;
  const id = 'ERR_DATABASE_UNAVAILABLE';
  const error = fromLatchError(new LatchError('unavailable', id, 'database unavailable, try again', { retryAfterMs: DATABASE_RETRY_AFTER_MS }));
  // The reason only, not the error: knex puts the statement and its parameters into driver messages (X3).
  return { error, level: logLevelFor(error.code), msg: 'rpc error', log: { errorId: id, kind: 'unavailable', reason } };
}

/** A failed call's wire error plus what its one log line should say about it. */
export interface MappedError {
  error: ConnectError;
  level: LogLevel;
  /** Log fields: the error id and kind, and the error itself for server faults or when it has a cause. */
  log: Record<string, unknown>;
  /** The message a standalone log line would carry. */
  msg: string;
}

/**
 * Maps without logging, so the pipeline can put the details into the call's single log line
 * (one failed call, one line; it used to be an "rpc error" line plus the access line).
 */
export function mapError(err: unknown): MappedError {
  const outage = databaseOutageOf(err);
  if (outage) return outage;
  if (err instanceof LatchError) {
    const error = fromLatchError(err);
    const level = logLevelFor(error.code);
    // The stack of a caller's mistake is noise; a cause (or a server fault) is what operators need.
    const withStack = err.cause !== undefined || level === 'error';
    return { error, level, msg: 'rpc error', log: { errorId: err.id, kind: err.kind, ...(withStack ? { err: err.cause ?? err } : {}) } };
  }
  if (err instanceof ConnectError) {
    // Already a wire error (from connect itself, a deadline, or a downstream client).
    return { error: err, level: logLevelFor(err.code), msg: 'rpc error', log: { code: Code[err.code], err } };
  }
  return {
    error: new ConnectError(INTERNAL_MESSAGE, Code.Internal, { [errorIdHeader]: 'ERR_INTERNAL' }),
    level: 'error',
    msg: 'unexpected error in rpc handler',
    log: { err },
  };
}

/** mapError plus a log line of its own, for callers that write no line per call. */
export function toConnectError(err: unknown, logger: Logger): ConnectError {
  const { error, level, log, msg } = mapError(err);
  if (logger.isLevelEnabled(level)) logger[level](log, msg);
  return error;
}
