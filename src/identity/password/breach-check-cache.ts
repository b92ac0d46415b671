import type { Clock } from '../../shared/clock.js';
import type { BreachedSuffixes } from './breach-check-range.js';

/**
 * Ranges by prefix, bounded in count (HIBP_CACHE_SIZE) and age (HIBP_CACHE_TTL_SECONDS). It keys
 * on the 5-character prefix only, so it holds nothing more about a password than the request did.
 * A packed range is about 30 KB, so the default cap keeps it to a few megabytes.
 */
export class RangeCache {
  private readonly entries = new Map<string, { range: BreachedSuffixes; expiresAtMs: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  get(prefix: string): BreachedSuffixes | undefined {
    const entry = this.entries.get(prefix);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= this.clock.nowMs()) {
      this.entries.delete(prefix);
      return undefined;
    }
    // Most recently used goes last, so eviction below drops the least recently used.
    this.entries.delete(prefix);
    this.entries.set(prefix, entry);
    return entry.range;
  }

  set(prefix: string, range: BreachedSuffixes): void {
    if (this.maxEntries === 0 || this.ttlMs === 0) return;
    this.entries.delete(prefix);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(prefix, { range, expiresAtMs: this.clock.nowMs() + this.ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
