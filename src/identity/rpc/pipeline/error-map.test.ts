import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { Code, ConnectError } from '@connectrpc/connect';
import { DriverException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { RetryInfoSchema } from '../../../gen/google/rpc/error_details_pb.js';
import { LatchError, type ErrorKind } from '../../../shared/errors.js';
import { createLogger } from '../../../shared/logger.js';
import { INTERNAL_MESSAGE, logLevelFor, toConnectError } from './error-map.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger('debug', sink), lines };
}

const kinds: [ErrorKind, Code][] = [
  ['invalid_argument', Code.InvalidArgument],
  ['unauthenticated', Code.Unauthenticated],
  ['permission_denied', Code.PermissionDenied],
  ['not_found', Code.NotFound],
  ['already_exists', Code.AlreadyExists],
  ['failed_precondition', Code.FailedPrecondition],
  ['resource_exhausted', Code.ResourceExhausted],
  ['unavailable', Code.Unavailable],
  ['unimplemented', Code.Unimplemented],
];

describe('toConnectError', () => {
  it.each(kinds)('maps %s to its code, message and id', (kind, code) => {
    const { logger } = capture();
    const e = toConnectError(new LatchError(kind, 'ERR_X', 'caller-safe text'), logger);
    expect(e.code).toBe(code);
    expect(e.rawMessage).toBe('caller-safe text');
    expect(e.metadata.get('latch-error-id')).toBe('ERR_X');
    expect(e.metadata.get('retry-after')).toBeNull();
    expect(e.details).toHaveLength(0);
  });

  it('adds retry-after (seconds, rounded up) and a RetryInfo detail', () => {
    const { logger } = capture();
    const e = toConnectError(
      new LatchError('resource_exhausted', 'ERR_THROTTLED', 'too many attempts', { retryAfterMs: 1500 }),
      logger,
    );
    expect(e.metadata.get('retry-after')).toBe('2');
    const [info] = e.findDetails(RetryInfoSchema);
    expect(info?.retryDelay?.seconds).toBe(1n);
    expect(info?.retryDelay?.nanos).toBe(500_000_000);
  });

  it('hides the message of an internal LatchError and logs its cause at error level', () => {
    const { logger, lines } = capture();
    const e = toConnectError(
      new LatchError('internal', 'ERR_DB', 'row 42 broke', { cause: new Error('pg: relation missing') }),
      logger,
    );
    expect(e.code).toBe(Code.Internal);
    expect(e.rawMessage).toBe(INTERNAL_MESSAGE);
    expect(e.metadata.get('latch-error-id')).toBe('ERR_DB');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe(50);
    expect(JSON.stringify(lines[0])).toContain('pg: relation missing');
  });

  it('turns anything else into a generic INTERNAL without its message or stack', () => {
    const { logger, lines } = capture();
    const bare = new Error('SELECT password FROM users failed at /srv/app.ts:12');
    const e = toConnectError(bare, logger);
    expect(e.code).toBe(Code.Internal);
    expect(e.rawMessage).toBe(INTERNAL_MESSAGE);
    expect(e.message).not.toContain('SELECT');
    expect(e.cause).toBeUndefined();
    expect(lines.map((l) => l.level)).toEqual([50]);
    expect(JSON.stringify(lines[0])).toContain('SELECT password');
    for (const v of [undefined, null, 'string thrown', 42, { weird: true }]) {
      expect(toConnectError(v, logger).rawMessage).toBe(INTERNAL_MESSAGE);
    }
  });

  it('passes a ConnectError through unchanged', () => {
    const { logger } = capture();
    const orig = new ConnectError('deadline', Code.DeadlineExceeded);
    expect(toConnectError(orig, logger)).toBe(orig);
  });

  it('logs client errors at debug and pressure at warn', () => {
    const { logger, lines } = capture();
    toConnectError(new LatchError('unauthenticated', 'ERR_BAD', 'no'), logger);
    toConnectError(new LatchError('unavailable', 'ERR_DOWN', 'try later'), logger);
    expect(lines.map((l) => l.level)).toEqual([20, 40]);
    expect(logLevelFor(undefined)).toBe('info');
    expect(logLevelFor(Code.NotFound)).toBe('debug');
    expect(logLevelFor(Code.Unknown)).toBe('error');
  });
});

describe('database outages (docs/security.md I3, I5)', () => {
  // Shapes as they arrive: pg's own errors, knex's pool error, and MikroORM's DriverException
  // wrapping (which keeps `code`, renames the error and gets the statement prepended by knex).
  const pgError = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});
  const knexTimeout = () => Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' });
  const statement = "select * from users where email = 'secret-param@example.com'";
  const outages: [string, unknown][] = [
    ['client statement timeout', new DriverException(pgError(`${statement} - Query read timeout`))],
    ['server statement timeout', new DriverException(pgError(`${statement} - canceling statement due to statement timeout`, '57014'))],
    ['pool acquire timeout', knexTimeout()],
    ['pool acquire timeout, wrapped', new DriverException(pgError('Knex: Timeout acquiring a connection. The pool is probably full.'))],
    ['connect timeout', pgError('timeout expired')],
    ['connect timeout (newer pg)', pgError('Connection terminated due to connection timeout')],
    ['connection lost', new DriverException(pgError(`${statement} - Connection terminated unexpectedly`))],
    ['refused', pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['server shutting down', pgError('terminating connection due to administrator command', '57P01')],
    ['connection exception class 08', pgError('connection failure', '08006')],
    ['transaction whose BEGIN failed (knex)', new DriverException(pgError('Transaction query already complete, run with DEBUG=knex:tx for more info'))],
    ['internal LatchError wrapping one', new LatchError('internal', 'ERR_X', 'lookup failed', { cause: knexTimeout() })],
  ];

  it.each(outages)('%s is UNAVAILABLE with retry info, logged without the statement', (_name, err) => {
    const { logger, lines } = capture();
    const e = toConnectError(err, logger);
    expect(e.code).toBe(Code.Unavailable);
    expect(e.metadata.get('latch-error-id')).toBe('ERR_DATABASE_UNAVAILABLE');
    expect(e.metadata.get('retry-after')).toBe('1');
    expect(e.findDetails(RetryInfoSchema)).toHaveLength(1);
    expect(e.rawMessage).not.toMatch(/select|secret-param/i);
    expect(lines.map((l) => l.level)).toEqual([40]);
    expect(JSON.stringify(lines)).not.toContain('secret-param');
    expect(lines[0]?.reason).toEqual(expect.any(String));
  });

  it('leaves other database errors and explicit mappings alone', () => {
    const { logger } = capture();
    expect(toConnectError(new UniqueConstraintViolationException(pgError('duplicate key', '23505')), logger).code).toBe(Code.Internal);
    expect(toConnectError(pgError('relation "users" does not exist', '42P01'), logger).code).toBe(Code.Internal);
    const cached = new LatchError('unavailable', 'ERR_BACKEND_UNAVAILABLE', 'identity backend unavailable, try again', { cause: knexTimeout(), retryAfterMs: 1000 });
    expect(toConnectError(cached, logger).metadata.get('latch-error-id')).toBe('ERR_BACKEND_UNAVAILABLE');
    const wire = new ConnectError('down', Code.Unavailable);
    expect(toConnectError(wire, logger)).toBe(wire);
  });
});
