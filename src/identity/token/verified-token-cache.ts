/**
 * Remembers access tokens whose signature and claims already checked out, so the tokens a
 * service introspects on every request cost a map lookup instead of a signature verification.
 * Only positive results are kept (junk cannot crowd out real tokens by being repeated), an entry
 * is used only before the token's exp, and the oldest entries go first once `maxEntries` is
 * reached. Revocation is not cached here: the caller checks the user's state on every hit.
 */
export class VerifiedTokenCache<T extends { expMs: number }> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly maxEntries: number) {}

  get(token: string, nowMs: number): T | undefined {
    const hit = this.entries.get(token);
    if (hit === undefined) return undefined;
    if (nowMs >= hit.expMs) {
      this.entries.delete(token);
      return undefined;
    }
    return hit;
  }

  set(token: string, value: T): void {
    if (this.maxEntries <= 0) return;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, value);
  }

  get size(): number {
    return this.entries.size;
  }
}
