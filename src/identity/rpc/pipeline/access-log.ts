import { Code, type HandlerContext } from '@connectrpc/connect';
import type { ClientInfo } from '../../../shared/client-info.js';
import type { Logger } from '../../../shared/logger.js';
import { callerKey, principalKey } from './context-keys.js';
import { errorIdHeader, type MappedError } from './error-map.js';

/** "ok", "invalid_argument", ...: the names gRPC and Connect use on the wire. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return 'ok';
  return CODE_NAMES.get(code) ?? String(code);
}

// Worked out once: a refused call (a flood's every call) should not run a regex for its name.
const CODE_NAMES = new Map<number, string>(
  Object.values(Code)
    .filter((c): c is Code => typeof c === 'number')
    .map((c) => [c, Code[c].replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()]),
);

const atLeastInfo = (l: MappedError['level']) => (l === 'debug' ? 'info' : l);

/**
 * The one line every call writes. Never request/response bodies or headers: they carry
 * passwords and tokens. A failure's details (error id, kind, the cause of a server fault) ride
 * on this same line.
 */
export function writeAccessLine(
  logger: Logger,
  rpc: string,
  code: string,
  seconds: number,
  info: ClientInfo,
  ctx: HandlerContext,
  failure: MappedError | undefined,
): void {
  const level = failure === undefined ? 'info' : atLeastInfo(failure.level);
  logger[level](
    {
      ...failure?.log,
      rpc,
      code,
      durationMs: Math.round(seconds * 1e4) / 10,
      ip: info.ip,
      transport: ctx.protocolName,
      userId: ctx.values.get(principalKey)?.userId,
      caller: ctx.values.get(callerKey),
      errorId: failure?.error.metadata.get(errorIdHeader) ?? undefined,
    },
    'rpc',
  );
}
