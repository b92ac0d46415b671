/**
 * Recognises a database that is down, unreachable or not answering in time, as opposed to a
 * bug or a constraint violation, whatever layer raised it: pg itself, knex's pool, or MikroORM
 * (which re-wraps driver errors as DriverException, keeping `code` but not `name`).
 */

/** SQLSTATEs that say "the database cannot serve this now", not "this statement is wrong". */
const OUTAGE_SQLSTATES = new Map<string, string>([
  ['57014', 'statement timeout'], // query_canceled: statement_timeout fired
  ['57P01', 'server shutting down'], // admin_shutdown
  ['57P02', 'server crashed'], // crash_shutdown
  ['57P03', 'server starting'], // cannot_connect_now
  ['53300', 'too many connections'],
  ['25P03', 'idle transaction timeout'],
]);

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** pg and knex raise these without a code; the messages are stable across their releases. */
const MESSAGES: [RegExp, string][] = [
  [/Query read timeout$/, 'statement timeout'],
  [/Timeout acquiring a connection/, 'pool acquire timeout'],
  [/timeout expired$|Connection terminated due to connection timeout/, 'connect timeout'],
  [/Connection terminated( unexpectedly)?$/, 'connection lost'],
  [/Client has encountered a connection error and is not queryable$|Client was closed and is not queryable$/, 'connection lost'],
  // knex swallows a failed BEGIN (here: its connection stalled or died) and hands out the
  // transaction anyway; its first statement then fails with this instead of the cause.
  [/^Transaction query already complete/, 'transaction aborted'],
];

/**
 * A short reason ("statement timeout", "pool acquire timeout", "connect timeout", ...) when `err`
 * (or one of its causes) is a database outage, else undefined. The reason is safe to log: it
 * never carries the statement or its parameters, which knex prepends to driver messages.
 */
export function databaseOutage(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.name === 'KnexTimeoutError') return 'pool acquire timeout';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      const bySqlState = OUTAGE_SQLSTATES.get(code);
      if (bySqlState) return bySqlState;
      // Class 08: connection exception.
      if (/^08[0-9A-Z]{3}$/.test(code)) return 'connection failure';
      if (SOCKET_CODES.has(code)) return `connection failure (${code})`;
    }
    for (const [pattern, reason] of MESSAGES) if (pattern.test(e.message)) return reason;
  }
  return undefined;
}
