import type { HandlerContext } from '@connectrpc/connect';
import type { BlockList } from 'node:net';
import type { ClientInfo } from '../../../shared/client-info.js';
import { clientAddress } from './client-address.js';
import { clientInfoKey, peerAddressKey } from './context-keys.js';

/**
 * The first step of every call: who the client is (its address, behind trusted proxies, and its
 * user agent), stored for the handlers and returned for the access log.
 */
export function recordClientInfo(ctx: HandlerContext, trustedProxies: BlockList): ClientInfo {
  const info: ClientInfo = {
    ip: clientAddress(ctx.values.get(peerAddressKey), ctx.requestHeader.get('x-forwarded-for'), trustedProxies),
    userAgent: ctx.requestHeader.get('user-agent') ?? '',
  };
  ctx.values.set(clientInfoKey, info);
  return info;
}

export function clientInfo(ctx: HandlerContext): ClientInfo {
  return ctx.values.get(clientInfoKey);
}
