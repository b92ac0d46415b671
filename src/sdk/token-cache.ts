import type { LatchPrincipal } from './principal.js';

export interface TokenCacheOptions {
  /** Most tokens remembered (the oldest answers go first); default 10 000; 0 disables the cache. */
  maxEntries?: number;
  /** How long an answer is trusted at most, whatever the token's exp; default 10 000 ms. */
  ttlMs?: number;
  now?: () => number;
}

interface Entry {
  principal: LatchPrincipal | null;
  untilMs: number;
}

/**
 * Introspection answers per token, bounded by the token's exp and a TTL, with concurrent lookups
 * of the same token sharing one call. Revocations drop entries by user or by session; an answer
 * that was in flight while a revocation arrived is handed to its callers but not remembered.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<LatchPrincipal | null>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** Bumped by every revocation and every clear(). */
  private epoch = 0;
  /** When false, nothing is served from or stored in the cache (lookups still coalesce). */
  private trusted = true;

  constructor(o: TokenCacheOptions = {}) {
    this.maxEntries = o.maxEntries ?? 10_000;
    this.ttlMs = o.ttlMs ?? 10_000;
    this.now = o.now ?? Date.now;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 0) throw new RangeError('maxEntries must be a non-negative integer');
    if (!(this.ttlMs >= 0)) throw new RangeError('ttlMs must be non-negative');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached answer without waiting: a principal, null (known inactive), or undefined (not cached). */
  peek(token: string): LatchPrincipal | null | undefined {
    if (!this.trusted) return undefined;
    const hit = this.entries.get(token);
    if (!hit) return undefined;
    if (hit.untilMs > this.now()) return hit.principal;
    this.entries.delete(token);
    return undefined;
  }

  /** The cached answer, or the shared result of `load` (called once for concurrent lookups). */
  get(token: string, load: (token: string) => Promise<LatchPrincipal | null>): Promise<LatchPrincipal | null> {
    const hit = this.trusted ? this.entries.get(token) : undefined;
    if (hit) {
      if (hit.untilMs > this.now()) return Promise.resolve(hit.principal);
      this.entries.delete(token);
    }
    const pending = this.inflight.get(token);
    if (pending) return pending;
    const epoch = this.epoch;
    const p = load(token).then(
      (principal) => {
        this.inflight.delete(token);
        if (epoch === this.epoch) this.store(token, principal);
        return principal;
      },
      (err: unknown) => {
        this.inflight.delete(token);
        throw err;
      },
    );
    this.inflight.set(token, p);
    return p;
  }

  /** Every user-wide revocation drops all of the user's entries; a per-session one only that session's. */
  revoke(userId: string, sessionId?: string): void {
    this.epoch++;
    for (const [token, e] of this.entries) {
      const p = e.principal;
      if (p && p.userId === userId && (sessionId === undefined || p.sessionId === undefined || p.sessionId === sessionId)) {
        this.entries.delete(token);
      }
    }
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
  }

  /** While the revocation feed is down, answers are neither served from nor kept in the cache. */
  setTrusted(trusted: boolean): void {
    if (trusted === this.trusted) return;
    this.clear();
    this.trusted = trusted;
  }

  private store(token: string, principal: LatchPrincipal | null): void {
    if (this.maxEntries === 0 || this.ttlMs === 0 || !this.trusted) return;
    const now = this.now();
    const untilMs = Math.min(now + this.ttlMs, principal ? principal.expiresAtMs : Infinity);
    if (untilMs <= now) return;
    this.entries.delete(token);
    this.entries.set(token, { principal, untilMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}
