import { describe, it, expect } from 'vitest';
import { clientAddress, normalizeAddress, trustedProxyList } from './client-address.js';

describe('normalizeAddress', () => {
  it.each([
    ['ipv4:10.1.2.3:5678', '10.1.2.3'],
    ['ipv6:[::1]:5678', '::1'],
    ['ipv6:[2001:db8::7]:443', '2001:db8::7'],
    ['::ffff:192.0.2.9', '192.0.2.9'],
    ['[::ffff:192.0.2.9]:80', '192.0.2.9'],
    ['192.0.2.9:1234', '192.0.2.9'],
    ['  203.0.113.5 ', '203.0.113.5'],
    ['2001:db8::1', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['unknown', ''],
    ['', ''],
    ['1.2.3.4.5', ''],
  ])('%s → %s', (raw, want) => {
    expect(normalizeAddress(raw)).toBe(want);
  });
});

describe('clientAddress', () => {
  const proxies = ['10.0.0.0/8', '2001:db8:ffff::/48', '192.0.2.1'];

  it('uses the peer and ignores X-Forwarded-For when the peer is not a trusted proxy', () => {
    expect(clientAddress('ipv4:203.0.113.7:4000', '198.51.100.1', proxies)).toBe('203.0.113.7');
    expect(clientAddress('ipv4:203.0.113.7:4000', '198.51.100.1', [])).toBe('203.0.113.7');
  });

  it('uses the peer when there is no header', () => {
    expect(clientAddress('ipv4:10.0.0.5:4000', null, proxies)).toBe('10.0.0.5');
    expect(clientAddress('::ffff:10.0.0.5', '', proxies)).toBe('10.0.0.5');
  });

  it('takes the right-most untrusted hop behind a trusted proxy', () => {
    // The client forged the left-most entry; our proxy appended the real address.
    expect(clientAddress('ipv4:10.0.0.5:4000', '1.1.1.1, 198.51.100.23', proxies)).toBe('198.51.100.23');
    // Two proxy hops: 10.9.9.9 is ours, so skip it.
    expect(clientAddress('ipv4:10.0.0.5:4000', '1.1.1.1, 198.51.100.23, 10.9.9.9', proxies)).toBe('198.51.100.23');
  });

  it('accepts single-address entries and IPv6 CIDRs', () => {
    expect(clientAddress('ipv4:192.0.2.1:1', '198.51.100.4', proxies)).toBe('198.51.100.4');
    expect(clientAddress('ipv4:192.0.2.2:1', '198.51.100.4', proxies)).toBe('192.0.2.2');
    expect(clientAddress('ipv6:[2001:db8:ffff::9]:1', '2001:db8:1::1', proxies)).toBe('2001:db8:1::1');
  });

  it('never goes left of a malformed hop', () => {
    expect(clientAddress('ipv4:10.0.0.5:4000', '198.51.100.23, garbage', proxies)).toBe('10.0.0.5');
    expect(clientAddress('ipv4:10.0.0.5:4000', '198.51.100.23, garbage, 10.1.1.1', proxies)).toBe('10.1.1.1');
  });

  it('falls back to the left-most hop when every hop is a trusted proxy', () => {
    expect(clientAddress('ipv4:10.0.0.5:4000', '10.0.0.7, 10.0.0.6', proxies)).toBe('10.0.0.7');
  });

  it('accepts a precompiled list and rejects invalid entries', () => {
    const list = trustedProxyList(proxies);
    expect(clientAddress('ipv4:10.0.0.5:4000', '198.51.100.23', list)).toBe('198.51.100.23');
    expect(() => trustedProxyList(['10.0.0.0/33'])).toThrow(/invalid trusted proxy/);
    expect(() => trustedProxyList(['example.com'])).toThrow(/invalid trusted proxy/);
    expect(() => trustedProxyList(['10.0.0.0/8/1'])).toThrow(/invalid trusted proxy/);
  });
});
