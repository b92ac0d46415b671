import type { Clock } from '../../shared/clock.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { MaybePromise } from '../../shared/maybe-promise.js';
import type { UserStore, TokenStateRow } from '../account/user-store.js';
import { msOf } from '../persistence/row-values.js';

/**
 * What Introspect needs to know about a token's subject beyond the signature, plus the rest of
 * what GetCurrentUser answers (created_at, totp_enabled), so that RPC reads no more than Introspect.
 */
export interface UserState {
  email: string;
  role: 'user' | 'admin';
  disabled: boolean;
  passwordMustChange: boolean;
  createdAtMs: number;
  totpEnabled: boolean;
  /** The address was verified (docs/security.md V1); dropped from the cache when it changes. */
  emailVerified: boolean;
  /**
   * Access tokens issued before this instant are inactive: the user's tokens_valid_after, raised
   * past the oldest revoked sessions when there were more than the list below can hold.
   */
  tokensValidAfterMs: number;
  /** Sessions of the user ended one by one recently (docs/security.md R8): their tokens (`sid`) are inactive. */
  revokedSessions: ReadonlySet<string>;
}

/**
 * How far back a revoked session still matters: the longest access-token lifetime the
 * configuration allows (ACCESS_TOKEN_TTL_SECONDS ≤ 3600) plus the largest clock leeway (T4), so a
 * TTL lowered between deployments cannot age a session out while its tokens still verify.
 */
export const REVOKED_SESSION_WINDOW_MS = (3600 + 60) * 1000;
/** At most this many revoked sessions per user are kept; past it the list fails closed (see load). */
export const MAX_REVOKED_SESSIONS = 1000;
/** Users whose state is kept at most; the map is cleared when full. */
export const MAX_USER_STATE_ENTRIES = 100_000;

/** Lookups gathered into one query at most (readTokenStates). */
export const MAX_LOOKUP_BATCH = 256;

interface Lookup {
  userId: string;
  resolve(state: UserState | null): void;
  reject(err: unknown): void;
}

export interface UserStateCacheLimits {
  maxEntries?: number;
  maxRevokedSessions?: number;
  revokedSessionWindowMs?: number;
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
 * Per-process cache of user state on the Introspect and user-RPC authentication hot path. Entries are dropped by the
 * sessions_revoked broadcast and expire after `ttlMs` in any case; while the broadcast is not
 * live the cache is bypassed, so a missed broadcast can never stretch the revocation bound (I4).
 * A database failure is UNAVAILABLE, never "inactive" (I3).
 */
export class UserStateCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<UserState | null>>();
  private generation = 0;
  private queued: Lookup[] = [];
  private flushScheduled = false;
  private readonly maxEntries: number;
  private readonly maxRevokedSessions: number;
  private readonly revokedSessionWindowMs: number;

  constructor(
    private readonly users: UserStore,
    private readonly bus: RevocationSource,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
    limits: UserStateCacheLimits = {},
  ) {
    this.maxEntries = limits.maxEntries ?? MAX_USER_STATE_ENTRIES;
    this.maxRevokedSessions = limits.maxRevokedSessions ?? MAX_REVOKED_SESSIONS;
    this.revokedSessionWindowMs = limits.revokedSessionWindowMs ?? REVOKED_SESSION_WINDOW_MS;
  }

  /** A fresh entry is answered now, without a promise (maybe-promise.ts). */
  get(userId: string): MaybePromise<UserState | null> {
    const now = this.clock.nowMs();
    if (this.ttlMs > 0 && this.bus.isLive()) {
      const hit = this.entries.get(userId);
      if (hit && now - hit.fetchedAtMs < this.ttlMs) return hit.state;
    }
    return this.load(userId, now);
  }

  private async load(userId: string, now: number): Promise<UserState | null> {
    // Collapse concurrent misses for one user into one query.
    const pending = this.inFlight.get(userId);
    if (pending) return pending;
    const generation = this.generation;
    const previous = this.entries.get(userId)?.state;
    const load = this.loadBatched(userId)
      .then((fresh) => (previous && fresh && sameState(previous, fresh) ? previous : fresh))
      .finally(() => this.inFlight.delete(userId));
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

  /**
   * Misses are gathered until the event loop has handled what it has in hand (setImmediate), then
   * looked up together, up to MAX_LOOKUP_BATCH users per query: under load, many services asking
   * about many users cost a query per batch instead of a query per user. A lone lookup waits one
   * turn of the loop.
   */
  private loadBatched(userId: string): Promise<UserState | null> {
    return new Promise((resolve, reject) => {
      this.queued.push({ userId, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const all = this.queued;
    this.queued = [];
    for (let i = 0; i < all.length; i += MAX_LOOKUP_BATCH) void this.loadMany(all.slice(i, i + MAX_LOOKUP_BATCH));
  }

  /**
   * One query: each user row and the sessions ended one by one within the window (those ended
   * together with a tokens_valid_after bump are covered by it and left out). Past the cap, every
   * token issued at or before the newest session left out is inactive whatever its `sid`: the
   * user's other sessions then need a refresh, but no revoked session's token stays active.
   */
  private async loadMany(batch: Lookup[]): Promise<void> {
    let rows: Map<string, TokenStateRow>;
    try {
      rows = await this.users.readTokenStates(
        batch.map((b) => b.userId),
        new Date(this.clock.nowMs() - this.revokedSessionWindowMs),
        this.maxRevokedSessions + 1,
      );
    } catch (err) {
      this.logger.error({ err, users: batch.length }, 'user state lookup failed');
      const e = new LatchError('unavailable', 'ERR_BACKEND_UNAVAILABLE', 'identity backend unavailable, try again', { cause: err, retryAfterMs: 1000 });
      for (const b of batch) b.reject(e);
      return;
    }
    for (const b of batch) {
      try {
        b.resolve(this.toState(b.userId, rows.get(b.userId) ?? null));
      } catch (err) {
        b.reject(err);
      }
    }
  }

  private toState(userId: string, r: TokenStateRow | null): UserState | null {
    if (!r) return null;
    let tokensValidAfterMs = msOf(r.tokensValidAfter);
    const ids = r.revokedIds ?? [];
    if ((r.revokedCount ?? 0) > this.maxRevokedSessions && r.revokedOldest !== null) {
      tokensValidAfterMs = Math.max(tokensValidAfterMs, msOf(r.revokedOldest) + 1);
      this.logger.warn({ userId, kept: this.maxRevokedSessions }, 'more revoked sessions than tracked: older access tokens of the user are inactive');
    }
    return {
      email: r.email,
      role: r.role,
      disabled: r.disabled,
      passwordMustChange: r.passwordMustChange,
      createdAtMs: msOf(r.createdAt),
      totpEnabled: r.totpEnabled === true,
      emailVerified: r.emailVerified === true,
      tokensValidAfterMs,
      revokedSessions: new Set(ids.slice(0, this.maxRevokedSessions)),
    };
  }
}

/**
 * A reread that found nothing changed keeps the object it replaces: what was built from the state
 * (Introspect's answer, its encoded response) stays valid and is reused, instead of being built
 * again for every user each time their entry's TTL runs out. Every field counts.
 */
function sameState(a: UserState, b: UserState): boolean {
  // Field by field over whatever UserState holds, so a field added later is compared too.
  for (const key of Object.keys(b) as (keyof UserState)[]) {
    const x = a[key];
    const y = b[key];
    if (x instanceof Set && y instanceof Set) {
      if (x.size !== y.size) return false;
      for (const v of y) if (!x.has(v)) return false;
    } else if (x !== y) {
      return false;
    }
  }
  return Object.keys(a).length === Object.keys(b).length;
}
