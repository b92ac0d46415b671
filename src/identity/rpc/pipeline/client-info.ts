import type { HandlerContext } from '@connectrpc/connect';
import type { BlockList } from 'node:net';
import type { ClientInfo } from '../../../shared/client-info.js';
import { clientAddress } from './client-address.js';
import { clientInfoKey, peerAddressKey } from './context-keys.js';

/**
 * The first step of every call: who the client is (its address, behind trusted proxies, and its
 * user agent), stored for the handlers and returned for the access log. Each is worked out when
 * first read: the busiest calls (Introspect, GetCurrentUser) succeed without reading either, as
 * their access lines are summarised. The transports read the peer address while the call is open
 * (every read of client info happens before the call answers).
 */
export function recordClientInfo(ctx: HandlerContext, trustedProxies: BlockList): ClientInfo {
  const info = new LazyClientInfo(ctx.values.get(peerAddressKey), ctx.requestHeader, trustedProxies);
  ctx.values.set(clientInfoKey, info);
  return info;
}

export function clientInfo(ctx: HandlerContext): ClientInfo {
  return ctx.values.get(clientInfoKey);
}

/**
 * A class rather than an object literal with getters: V8 builds such a literal through its slow
 * path (about half a microsecond here), on every call. Its state is in private fields, so nothing
 * that enumerates it (a logger, a spread) can reach the request headers; it serialises as the
 * plain { ip, userAgent }.
 */
class LazyClientInfo implements ClientInfo {
  readonly #peer: string | (() => string);
  readonly #headers: Headers;
  readonly #trustedProxies: BlockList;
  #ip: string | undefined;
  #userAgent: string | undefined;

  constructor(peer: string | (() => string), headers: Headers, trustedProxies: BlockList) {
    this.#peer = peer;
    this.#headers = headers;
    this.#trustedProxies = trustedProxies;
  }

  get ip(): string {
    if (this.#ip !== undefined) return this.#ip;
    const peer = typeof this.#peer === 'string' ? this.#peer : this.#peer();
    return (this.#ip = clientAddress(peer, this.#headers.get('x-forwarded-for'), this.#trustedProxies));
  }

  get userAgent(): string {
    return (this.#userAgent ??= this.#headers.get('user-agent') ?? '');
  }

  toJSON(): ClientInfo {
    return { ip: this.ip, userAgent: this.userAgent };
  }
}
