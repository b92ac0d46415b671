import { describe, expect, it, vi } from 'vitest';
import { createContextValues, createHandlerContext } from '@connectrpc/connect';
import { TokenIntrospectionService } from '../../../gen/identity/v1/introspection_pb.js';
import { trustedProxyList } from './client-address.js';
import { clientInfo, recordClientInfo } from './client-info.js';
import { peerAddressKey } from './context-keys.js';

function context(peer: string, headers: Record<string, string>) {
  return createHandlerContext({
    service: TokenIntrospectionService,
    method: TokenIntrospectionService.method.introspect,
    protocolName: 'grpc',
    requestMethod: 'POST',
    url: '/x',
    requestHeader: headers,
    contextValues: createContextValues().set(peerAddressKey, peer),
  });
}

describe('recordClientInfo', () => {
  it('reads no header until asked, then each once', () => {
    const ctx = context('ipv4:10.0.0.5:4000', { 'x-forwarded-for': '198.51.100.7', 'user-agent': 'probe/1.0' });
    const get = vi.spyOn(ctx.requestHeader, 'get');
    const info = recordClientInfo(ctx, trustedProxyList(['10.0.0.0/8']));
    expect(get).not.toHaveBeenCalled();
    expect(clientInfo(ctx)).toBe(info);
    expect(info.ip).toBe('198.51.100.7');
    expect(info.ip).toBe('198.51.100.7');
    expect(info.userAgent).toBe('probe/1.0');
    expect(get.mock.calls.map((c) => c[0])).toEqual(['x-forwarded-for', 'user-agent']);
  });

  it('serialises like a plain object and exposes nothing else to enumeration', () => {
    const info = recordClientInfo(
      context('ipv4:203.0.113.9:4000', { 'user-agent': 'probe/1.0', authorization: 'Bearer do-not-log' }),
      trustedProxyList([]),
    );
    expect(JSON.parse(JSON.stringify(info))).toEqual({ ip: '203.0.113.9', userAgent: 'probe/1.0' });
    expect(JSON.stringify({ client: info })).not.toContain('do-not-log');
    expect(Object.keys(info)).toEqual([]);
    expect({ ip: info.ip, userAgent: info.userAgent }).toEqual({ ip: '203.0.113.9', userAgent: 'probe/1.0' });
  });

  it('keeps the peer the call started with', () => {
    const ctx = context('ipv4:203.0.113.9:4000', {});
    const info = recordClientInfo(ctx, trustedProxyList([]));
    ctx.values.set(peerAddressKey, 'unknown');
    expect(info.ip).toBe('203.0.113.9');
    expect(info.userAgent).toBe('');
  });
});
