/**
 * Remembers access tokens whose signature and claims already checked out, so the tokens a
 * service introspects on every request cost a map lookup instead of a signature verification.
 * Only positive results are kept (junk cannot crowd out real tokens by being repeated), an entry
 * is used only before the token's exp, and the oldest entries go first once `maxEntries` is
 * reached. Revocation is not cached here: the caller checks the user's state on every hit.
 *
 * Entries are found by the token's last KEY_CHARS characters and answered only when the whole
 * token is equal. A presented token is a new string on every call, and V8 hashes every character
 * of a string used as a map key: about a microsecond for a 560-character JWT, against a tenth of
 * that for its tail plus one comparison. A JWT ends in its signature, so the tails of two tokens
 * differ; one made to share a cached token's tail is not that token, is not answered from the
 * cache, and never displaces the entry unless it verifies on its own.
 */
export class VerifiedTokenCache<T extends { expMs: number }> {
  private readonly entries = new Map<string, { token: string; value: T }>();

  constructor(private readonly maxEntries: number) {}

  get(token: string, nowMs: number): T | undefined {
    // Never throws, whatever a caller passes as the token.
    if (typeof token !== 'string') return undefined;
    const key = keyOf(token);
    const hit = this.entries.get(key);
    if (hit === undefined || hit.token !== token) return undefined;
    if (nowMs >= hit.value.expMs) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(token: string, value: T): void {
    if (this.maxEntries <= 0) return;
    const key = keyOf(token);
    if (this.entries.size >= this.maxEntries && !this.entries.has(key)) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { token, value });
  }

  get size(): number {
    return this.entries.size;
  }
}

/** 32 base64url characters of signature: 192 bits. */
const KEY_CHARS = 32;

const keyOf = (token: string): string => (token.length > KEY_CHARS ? token.slice(-KEY_CHARS) : token);
