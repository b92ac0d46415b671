import type { HandlerContext } from '@connectrpc/connect';
import type { DescMessage, Message } from '@bufbuild/protobuf';
import { requestDecodeFailureKey } from './context-keys.js';
import { assertCleanStrings } from './string-fields.js';

/**
 * The step before authentication: the answer depends only on the bytes sent, not on who sent
 * them. A body a transport could not decode fails here, so it is logged and counted like any
 * other failed call (docs/security.md X1); then every string field is checked (X2).
 */
export function checkRequest(input: DescMessage, req: unknown, ctx: HandlerContext): void {
  const undecodable = ctx.values.get(requestDecodeFailureKey);
  if (undecodable !== undefined) throw undecodable;
  assertCleanStrings(input, req as Message);
}
