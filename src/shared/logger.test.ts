import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { DatabaseError } from 'pg-protocol';
import { CheckConstraintViolationException, ConnectionException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { LatchError } from './errors.js';
import { createLogger, isDatabaseError, serializeError } from './logger.js';

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g';
const EMAIL = 'ada.secret@example.com';

function capture() {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const text = () => chunks.join('');
  const lines = () => text().split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger: createLogger('debug', sink), text, lines };
}

/** What pg raises, with the statement knex prepends to the message. */
function pgError(code: string, constraint: string): DatabaseError {
  const e = new DatabaseError(
    `insert into "users" ("email", "password_hash") values ('${EMAIL}', '${HASH}') - new row violates check constraint "${constraint}"`,
    200,
    'error',
  );
  Object.assign(e, {
    severity: 'ERROR',
    code,
    detail: `Failing row contains (${EMAIL}, ${HASH}).`,
    schema: 'public',
    table: 'users',
    constraint,
    routine: 'ExecConstraints',
  });
  return e;
}

describe('logger err serializer (docs/security.md X3)', () => {
  it('logs a database error by SQLSTATE, constraint and table only', () => {
    const { logger, lines, text } = capture();
    const err = new CheckConstraintViolationException(pgError('23514', 'users_email_check'));
    expect(isDatabaseError(err)).toBe(true);
    logger.error({ err }, 'write failed');
    expect(lines()[0]?.err).toEqual({
      type: 'CheckConstraintViolationException',
      sqlState: '23514',
      constraint: 'users_email_check',
      table: 'users',
      routine: 'ExecConstraints',
    });
    expect(text()).not.toContain(EMAIL);
    expect(text()).not.toContain('argon2');
    expect(text()).not.toContain('insert into');
  });

  it('reduces a database error inside a cause chain and keeps the wrapper readable', () => {
    const { logger, lines, text } = capture();
    const db = new UniqueConstraintViolationException(pgError('23505', 'users_email_key'));
    const wrapped = new LatchError('internal', 'ERR_DB', 'could not save the user', { cause: new Error('flush failed', { cause: db }) });
    logger.error({ err: wrapped }, 'rpc');
    const err = lines()[0]?.err as Record<string, unknown>;
    expect(err.message).toBe('could not save the user');
    expect(err.kind).toBe('internal');
    expect(String(err.stack)).toContain('LatchError');
    const cause = err.cause as Record<string, unknown>;
    expect(cause.message).toBe('flush failed');
    expect(cause.cause).toEqual({ type: 'UniqueConstraintViolationException', sqlState: '23505', constraint: 'users_email_key', table: 'users', routine: 'ExecConstraints' });
    expect(text()).not.toContain(EMAIL);
    expect(text()).not.toContain('argon2');
    // A bare pg error (no MikroORM around it) is recognised too.
    logger.warn({ err: pgError('23514', 'c') }, 'x');
    expect(lines()[1]?.err).toMatchObject({ type: 'error', sqlState: '23514', constraint: 'c' });
  });

  it('keeps ordinary errors as pino serializes them, causes included', () => {
    const { logger, lines } = capture();
    const err = new Error('outer', { cause: new TypeError('inner detail') });
    Object.assign(err, { requestId: 'r-1' });
    logger.error({ err }, 'boom');
    const out = lines()[0]?.err as Record<string, unknown>;
    expect(out.type).toBe('Error');
    expect(out.message).toBe('outer: inner detail');
    expect(String(out.stack)).toContain('caused by: TypeError: inner detail');
    expect(out.requestId).toBe('r-1');
  });

  it('keeps the errno of a connection failure', () => {
    const { logger, lines } = capture();
    const e = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    logger.error({ err: new ConnectionException(e) }, 'down');
    expect(lines()[0]?.err).toEqual({ type: 'ConnectionException', code: 'ECONNREFUSED' });
  });

  it('censors argon2 PHC strings anywhere in a line, whatever the key or message', () => {
    const { logger, text } = capture();
    logger.info({ note: `stored ${HASH}`, nested: { h: HASH } }, `hash was ${HASH}`);
    logger.error({ err: new Error(`failed for ${HASH}`) }, 'x');
    expect(text()).not.toContain('argon2id$');
    expect(text()).not.toContain('c2FsdHNhbHRzYWx0');
    expect(text()).toContain('[redacted-hash]');
  });
});

describe('statement-prefixed driver errors', () => {
  it('keeps only the reason of a knex "<statement> - <reason>" message', () => {
    const err = new Error(`update users set password_hash = '$argon2id$v=19$m=19456,t=2,p=1$abc$def', email = 'ada@example.com' where id = 'x' - Query read timeout`);
    const out = serializeError(err) as Record<string, unknown>;
    expect(out).toEqual({ type: 'Error', message: 'database statement failed: Query read timeout' });
    expect(JSON.stringify(out)).not.toContain('ada@example.com');
  });
});
