import type { HandlerContext } from '@connectrpc/connect';
import type { BlockList } from 'node:net';
import type { ClientInfo } from '../../../shared/client-info.js';
import { clientAddress } from './client-address.js';
import { clientInfoKey, peerAddressKey } from './context-keys.js';

/**
 * The first step of every call: who the client is (its address, behind trusted proxies, and its
 * user agent), stored for the handlers and returned for the access log. Each is worked out when
 * first read: the busiest calls (Introspect, GetCurrentUser) succeed without reading either, as
 * their access lines are summarised. The peer address is taken when the call starts, so a late
 * read still gives the address the call came from.
 */
export function recordClientInfo(ctx: HandlerContext, trustedProxies: BlockList): ClientInfo {
  const peer = ctx.values.get(peerAddressKey);
  const headers = ctx.requestHeader;
  let ip: string | undefined;
  let userAgent: string | undefined;
  // Own enumerable getters: spreading or serialising the object reads them like plain fields.
  const info: ClientInfo = {
    get ip() {
      return (ip ??= clientAddress(peer, headers.get('x-forwarded-for'), trustedProxies));
    },
    get userAgent() {
      return (userAgent ??= headers.get('user-agent') ?? '');
    },
  };
  ctx.values.set(clientInfoKey, info);
  return info;
}

export function clientInfo(ctx: HandlerContext): ClientInfo {
  return ctx.values.get(clientInfoKey);
}
