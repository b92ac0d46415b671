import { BlockList, isIP } from 'node:net';

/**
 * Normalises a transport peer string to a bare IP: grpc-js gives `ipv4:1.2.3.4:5678` or
 * `ipv6:[::1]:5678`, node sockets give `::ffff:1.2.3.4` for IPv4 on a dual-stack listener.
 * Returns '' when nothing that looks like an IP is left.
 */
export function normalizeAddress(raw: string): string {
  let s = raw.trim();
  if (s.startsWith('ipv4:') || s.startsWith('ipv6:')) s = s.slice(5);
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    s = end > 0 ? s.slice(1, end) : s.slice(1);
  } else if (isIP(s) === 0 && /^[0-9.]+:\d+$/.test(s)) {
    // IPv4 with port; a bare IPv6 address also contains colons, hence the isIP check first.
    s = s.slice(0, s.lastIndexOf(':'));
  }
  const zone = s.indexOf('%');
  if (zone > 0) s = s.slice(0, zone);
  if (s.toLowerCase().startsWith('::ffff:') && isIP(s.slice(7)) === 4) s = s.slice(7);
  return isIP(s) === 0 ? '' : s;
}

/** Compiles TRUSTED_PROXIES entries (IPs or CIDRs) once; invalid entries throw at start-up. */
export function trustedProxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits, extra] = entry.split('/');
    const ip = normalizeAddress(addr ?? '');
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (ip === '' || extra !== undefined) throw new Error(`invalid trusted proxy entry: ${entry}`);
    if (bits === undefined) {
      list.addAddress(ip, family);
      continue;
    }
    const prefix = Number(bits);
    if (!/^\d+$/.test(bits) || prefix > (family === 'ipv6' ? 128 : 32)) {
      throw new Error(`invalid trusted proxy entry: ${entry}`);
    }
    list.addSubnet(ip, prefix, family);
  }
  return list;
}

function isTrusted(ip: string, proxies: BlockList): boolean {
  if (ip === '') return false;
  return proxies.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * A connection's peer string is the same on every call it carries: remember the last few
 * normalised, so a busy connection does not parse its address per call.
 */
const peers = new Map<string, string>();
function normalizedPeer(peer: string): string {
  let ip = peers.get(peer);
  if (ip === undefined) {
    ip = normalizeAddress(peer);
    if (peers.size >= 1024) peers.clear();
    peers.set(peer, ip);
  }
  return ip;
}

const cache = new Map<string, BlockList>();
function compiled(trustedProxies: readonly string[] | BlockList): BlockList {
  if (trustedProxies instanceof BlockList) return trustedProxies;
  const key = trustedProxies.join(',');
  let list = cache.get(key);
  if (list === undefined) {
    list = trustedProxyList(trustedProxies);
    if (cache.size < 16) cache.set(key, list);
  }
  return list;
}

/**
 * The address to rate-limit and audit by. X-Forwarded-For is attacker-controlled unless the
 * direct peer is one of our proxies, so it is read only then; each trusted hop appends the
 * address it saw, so the right-most entry that is not itself a trusted proxy is the client
 * (entries further left were written by the client and prove nothing).
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | null,
  trustedProxies: readonly string[] | BlockList,
): string {
  const peerIp = normalizedPeer(peer);
  if (forwardedFor === null || forwardedFor.trim() === '') return peerIp;
  const proxies = compiled(trustedProxies);
  if (!isTrusted(peerIp, proxies)) return peerIp;
  // Walk right to left; `last` is the nearest address we can vouch for so far.
  let last = peerIp;
  const hops = forwardedFor.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const ip = normalizeAddress(hops[i] ?? '');
    // A malformed hop ends the chain we can trust: anything left of it is unverifiable.
    if (ip === '') return last;
    if (!isTrusted(ip, proxies)) return ip;
    last = ip;
  }
  return last;
}
