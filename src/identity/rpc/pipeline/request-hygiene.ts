import type { HandlerContext } from '@connectrpc/connect';
import type { DescMessage, Message } from '@bufbuild/protobuf';
import { decodedRequestKey, requestDecodeFailureKey } from './context-keys.js';
import { assertCleanStrings } from './string-fields.js';

/**
 * The step before authentication: the answer depends only on the bytes sent, not on who sent
 * them. A body a transport could not decode fails here, so it is logged and counted like any
 * other failed call (docs/security.md X1); then every string field is checked (X2).
 */
/**
 * The request as the client sent it: the message a transport decoded already, if it did (the
 * key is cleared, so the guard can tell it was taken), else the one connect decoded.
 */
export function takeRequest(req: unknown, ctx: HandlerContext): unknown {
  const decoded = ctx.values.get(decodedRequestKey);
  if (decoded === undefined) return req;
  ctx.values.delete(decodedRequestKey);
  return decoded;
}

export function checkRequest(input: DescMessage, req: unknown, ctx: HandlerContext): void {
  const undecodable = ctx.values.get(requestDecodeFailureKey);
  if (undecodable !== undefined) throw undecodable;
  assertCleanStrings(input, req as Message);
}
