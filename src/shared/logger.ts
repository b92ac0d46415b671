import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that must never reach a log line, whatever a caller passes in. Secrets are also kept out
 * by construction (we never log request messages); this is the second fence.
 */
const REDACT = [
  'password',
  '*.password',
  'current_password',
  'new_password',
  '*.currentPassword',
  '*.newPassword',
  'token',
  '*.token',
  'refresh_token',
  '*.refreshToken',
  'authorization',
  '*.authorization',
  'secret',
  '*.secret',
  'ADMIN_PASSWORD',
  '*.ADMIN_PASSWORD',
];

/**
 * docs/security.md X3: a database error's message, stack and `detail` carry the statement with its
 * values inlined (knex writes "<sql with bindings> - <reason>"; PostgreSQL's detail says
 * "Key (email)=(...)"), so emails and password hashes would reach the log. Such errors are logged
 * by what identifies the failure, never by what it was doing.
 */
const DATABASE_FIELDS = ['constraint', 'table', 'column', 'routine'] as const;
const SQLSTATE = /^[0-9A-Z]{5}$/;
/** knex's "<statement> - <reason>" message; the reason is the part after the last " - ". */
const STATEMENT_PREFIX = /^\s*(?:select|insert|update|delete|with|begin|commit|rollback|set|lock)\b[\s\S]* - ((?:(?! - )[\s\S])*)$/i;

/** Last resort for any line, whatever produced it: PHC strings of our password hashes. */
const ARGON2_PHC = /\$argon2(?:id|i|d)\$[A-Za-z0-9$=,+/.-]*/g;
const CENSORED = '[redacted-hash]';

type ErrorLike = Error & Record<string, unknown>;

const isErrorLike = (v: unknown): v is ErrorLike =>
  typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string' && 'stack' in v;

/** MikroORM's DriverException family (any subclass) or pg's DatabaseError. */
export function isDatabaseError(err: unknown): boolean {
  if (!isErrorLike(err)) return false;
  for (let p = Object.getPrototypeOf(err); p !== null && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    const name = (p as { constructor?: { name?: string } }).constructor?.name;
    if (name === 'DriverException' || name === 'DatabaseError') return true;
  }
  return typeof err.code === 'string' && SQLSTATE.test(err.code) && typeof err.severity === 'string';
}

function databaseSummary(err: ErrorLike): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name };
  const state = typeof err.sqlState === 'string' ? err.sqlState : err.code;
  if (typeof state === 'string' && SQLSTATE.test(state)) out.sqlState = state;
  // Connection failures have an errno name (ECONNREFUSED) instead; that is safe and useful.
  else if (typeof err.code === 'string' && /^E[A-Z0-9_]+$/.test(err.code)) out.code = err.code;
  for (const k of DATABASE_FIELDS) if (typeof err[k] === 'string' && err[k] !== '') out[k] = err[k];
  return out;
}

/** Is there a database error anywhere in this error's causes or error-valued properties? */
function involvesDatabase(err: ErrorLike, seen = new Set<unknown>()): boolean {
  if (seen.has(err)) return false;
  seen.add(err);
  if (isDatabaseError(err)) return true;
  for (const v of [err.cause, ...Object.values(err)]) if (isErrorLike(v) && involvesDatabase(v, seen)) return true;
  return false;
}

/**
 * pino's `err` serializer. Ordinary errors are serialized exactly as pino does (message and stack
 * with their causes); an error that is or wraps a database error keeps its own message and stack
 * but its database part is reduced to {type, sqlState, constraint, table, column, routine}.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!isErrorLike(err)) return err;
  if (isDatabaseError(err)) return databaseSummary(err);
  const statement = STATEMENT_PREFIX.exec(err.message);
  if (statement !== null) {
    // knex prefixes the statement (values inlined) to driver errors that are not DatabaseErrors,
    // such as a client-side query timeout or a dropped connection: keep only the reason.
    return { type: err.name, message: `database statement failed: ${statement[1]}` };
  }
  if (!involvesDatabase(err)) return pino.stdSerializers.err(err);
  const out: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  for (const [k, v] of Object.entries(err)) {
    if (k in out || k === 'cause') continue;
    out[k] = isErrorLike(v) ? (depth < 8 ? serializeError(v, depth + 1) : '[error]') : v;
  }
  if (err.cause !== undefined) out.cause = depth < 8 ? serializeError(err.cause, depth + 1) : '[error]';
  return out;
}

export function censorLine(line: string): string {
  return line.includes('$argon2') ? line.replace(ARGON2_PHC, CENSORED) : line;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'latch' },
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: serializeError },
      hooks: { streamWrite: censorLine },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that discards everything (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
