import { hash, timingSafeEqual } from 'node:crypto';
import { LatchError } from '../../shared/errors.js';

/**
 * Introspection callers (docs/api.md): only SHA-256 digests of the configured secrets are kept.
 * Every digest is compared, in constant time, whatever matches first.
 */
export class CallerCredentials {
  private readonly digests: { name: string; digest: Buffer }[];

  constructor(clients: { name: string; secret: string }[]) {
    this.digests = clients.map((c) => ({ name: c.name, digest: sha256(c.secret) }));
  }

  authenticate(secret: string): string {
    const presented = sha256(secret);
    let found: string | undefined;
    for (const c of this.digests) {
      if (timingSafeEqual(c.digest, presented) && found === undefined) found = c.name;
    }
    if (found === undefined) {
      throw new LatchError('unauthenticated', 'ERR_CALLER_UNAUTHENTICATED', 'introspection requires a valid caller credential');
    }
    return found;
  }
}

/** One-shot hashing: no Hash object per Introspect call. */
function sha256(s: string): Buffer {
  return hash('sha256', s, 'buffer');
}
