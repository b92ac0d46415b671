import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { msOf } from '../persistence/row-values.js';

/** What Introspect needs to know about a token's subject beyond the signature. */
export interface UserState {
  email: string;
  role: 'user' | 'admin';
  disabled: boolean;
  passwordMustChange: boolean;
  tokensValidAfterMs: number;
}

export interface RevocationSource {
  /** True while revocation broadcasts are known to arrive (NATS connected and subscribed). */
  isLive(): boolean;
}

interface Entry {
  state: UserState | null;
  fetchedAtMs: number;
}

/**
 * Per-process cache of user state on the Introspect hot path. Entries are dropped by the
 * sessions_revoked broadcast and expire after `ttlMs` in any case; while the broadcast is not
 * live the cache is bypassed, so a missed broadcast can never stretch the revocation bound (I4).
 * A database failure is UNAVAILABLE, never "inactive" (I3).
 */
export class UserStateCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<UserState | null>>();
  private generation = 0;

  constructor(
    private readonly orm: MikroORM,
    private readonly bus: RevocationSource,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly maxEntries = 100_000,
  ) {}

  async get(userId: string): Promise<UserState | null> {
    const now = this.clock.nowMs();
    if (this.ttlMs > 0 && this.bus.isLive()) {
      const hit = this.entries.get(userId);
      if (hit && now - hit.fetchedAtMs < this.ttlMs) return hit.state;
    }
    // Collapse concurrent misses for one user into one query.
    const pending = this.inFlight.get(userId);
    if (pending) return pending;
    const generation = this.generation;
    const load = this.load(userId).finally(() => this.inFlight.delete(userId));
    this.inFlight.set(userId, load);
    const state = await load;
    // An invalidation that raced the load wins: do not cache what may already be stale.
    if (generation === this.generation) {
      if (this.entries.size >= this.maxEntries) this.entries.clear();
      this.entries.set(userId, { state, fetchedAtMs: now });
    }
    return state;
  }

  invalidate(userId: string): void {
    this.generation++;
    this.entries.delete(userId);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  private async load(userId: string): Promise<UserState | null> {
    let rows: { email: string; role: 'user' | 'admin'; disabled: boolean; password_must_change: boolean; tokens_valid_after: Date | string }[];
    try {
      rows = await this.orm.em
        .fork()
        .execute(`select email, role, disabled, password_must_change, tokens_valid_after from users where id = ?`, [userId]);
    } catch (err) {
      this.logger.error({ err }, 'user state lookup failed');
      throw new LatchError('unavailable', 'ERR_BACKEND_UNAVAILABLE', 'identity backend unavailable, try again', { cause: err, retryAfterMs: 1000 });
    }
    const r = rows[0];
    if (!r) return null;
    return {
      email: r.email,
      role: r.role,
      disabled: r.disabled,
      passwordMustChange: r.password_must_change,
      tokensValidAfterMs: msOf(r.tokens_valid_after),
    };
  }
}
