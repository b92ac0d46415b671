import { hash, timingSafeEqual } from 'node:crypto';
import { LatchError } from '../../shared/errors.js';

/** At most this many verified credentials are remembered (one per configured client in practice). */
export const MAX_VERIFIED_CALLERS = 1024;

/**
 * Introspection callers (docs/api.md): the configured secrets are kept as SHA-256 digests, and
 * every digest is compared, in constant time, whatever matches first.
 *
 * A presented secret that matched is remembered, so a caller's next Introspect skips the hash:
 * only values that verified are stored (a wrong one is hashed and compared every time and never
 * remembered, so guesses cannot fill memory), and the store is bounded. A lookup finds only the
 * exact value of a credential that is already known to be good; anything else takes the
 * constant-time path above.
 */
export class CallerCredentials {
  private readonly digests: { name: string; digest: Buffer }[];
  private readonly verified = new Map<string, string>();

  constructor(clients: { name: string; secret: string }[]) {
    this.digests = clients.map((c) => ({ name: c.name, digest: sha256(c.secret) }));
  }

  authenticate(secret: string): string {
    const known = this.verified.get(secret);
    if (known !== undefined) return known;
    const presented = sha256(secret);
    let found: string | undefined;
    for (const c of this.digests) {
      if (timingSafeEqual(c.digest, presented) && found === undefined) found = c.name;
    }
    if (found === undefined) {
      throw new LatchError('unauthenticated', 'ERR_CALLER_UNAUTHENTICATED', 'introspection requires a valid caller credential');
    }
    if (this.verified.size >= MAX_VERIFIED_CALLERS) this.verified.clear();
    this.verified.set(secret, found);
    return found;
  }

  /** How many verified credentials are remembered (for tests). */
  get remembered(): number {
    return this.verified.size;
  }
}

/** One-shot hashing: no Hash object per call that is not remembered. */
function sha256(s: string): Buffer {
  return hash('sha256', s, 'buffer');
}
