import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { Code, ConnectError } from '@connectrpc/connect';
import { RetryInfoSchema } from '../../../gen/google/rpc/error_details_pb.js';
import { LatchError, type ErrorKind } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
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
