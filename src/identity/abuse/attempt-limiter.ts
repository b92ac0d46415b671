import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
  type RateLimiterStoreAbstract,
} from 'rate-limiter-flexible';
import { silentLogger, type Logger } from '../../shared/logger.js';

export interface LimiterOptions {
  /** Failures allowed; the one that reaches this number blocks the key. */
  points: number;
  /** How long failures are remembered, counted from the first one (fixed window). */
  durationSeconds: number;
  /** How long a key stays blocked once `points` is reached; 0 = until the window ends. */
  blockSeconds: number;
  /** Namespaces the keys (Redis key prefix); distinct per limiter. */
  keyPrefix: string;
  /** Shared counters for every replica; absent = this process only. */
  redis?: Redis;
  logger?: Logger;
}

export type LimitState = { blocked: false } | { blocked: true; retryAfterMs: number };

/**
 * The answer to reserve(): either the attempt may go ahead (it already counts as a failure until
 * settled), or the key is spent and the caller must refuse without doing the expensive check.
 */
export type Reservation =
  | { granted: true; /** 1-based position of this attempt in the current window. */ position: number }
  | { granted: false; retryAfterMs: number };

/**
 * A failure counter per key, with a lock when it reaches its limit: check before the attempt,
 * fail() after a failed one, reset() after a success. Used for sign-in attempts (A1) and meant
 * for second-factor attempts (A3) too.
 */
export interface AttemptLimiter {
  check(key: string): Promise<LimitState>;
  /**
   * Counts an attempt BEFORE the expensive check (one atomic increment), so N parallel attempts
   * never get more than `points` through (docs/security.md A4). Settle a granted reservation with
   * failed() when the attempt failed, or with reset()/refund() when it succeeded.
   */
  reserve(key: string): Promise<Reservation>;
  /**
   * Settles a granted reservation whose attempt failed: the count stays, and the failure that
   * used the last allowed attempt locks the key for blockSeconds. True for exactly that failure.
   */
  failed(key: string, reservation: Extract<Reservation, { granted: true }>): Promise<boolean>;
  /** Gives one reserved attempt back (an attempt that succeeded, for windowed limits). */
  refund(key: string): Promise<void>;
  /** Counts a failure; true when this failure is the one that locked the key. */
  fail(key: string): Promise<boolean>;
  reset(key: string): Promise<void>;
  /** Operations answered by the per-process fallback because Redis failed (metrics). */
  storeFallbacks(): number;
}

/** A store outage is logged at most this often; the metric counts every fallback. */
const LOG_EVERY_MS = 10_000;

/**
 * With Redis, counters live there (one Lua INCR per failure, atomic across replicas). When Redis
 * is down or not yet connected, each operation falls back at once to an in-process limiter with
 * the same limits (rate-limiter-flexible's `insuranceLimiter`): throttling keeps working per
 * replica instead of failing open, at the cost of counts not being shared until Redis returns.
 * Fallbacks are logged (at most every 10 s) and counted for metrics.
 */
export function createLimiter(options: LimiterOptions): AttemptLimiter {
  const { points, durationSeconds, blockSeconds, keyPrefix, redis } = options;
  if (!Number.isInteger(points) || points < 1) throw new RangeError('points must be ≥ 1');
  if (!Number.isInteger(durationSeconds) || durationSeconds < 1) throw new RangeError('durationSeconds must be ≥ 1');
  if (!Number.isInteger(blockSeconds) || blockSeconds < 0) throw new RangeError('blockSeconds must be ≥ 0');
  const logger = options.logger ?? silentLogger;
  const base = { points, duration: durationSeconds, keyPrefix };

  let fallbacks = 0;
  let lastLogged = -Infinity;
  const onFallback = () => {
    fallbacks++;
    const now = Date.now();
    if (now - lastLogged >= LOG_EVERY_MS) {
      lastLogged = now;
      logger.error({ keyPrefix, fallbacks }, 'rate limit store unavailable; limiting per replica');
    }
  };

  // Alone it holds the counters; beside Redis it answers while Redis is away, each use counted.
  const memory = new LockingMemoryLimiter(base, redis === undefined ? undefined : onFallback);
  const limiter: RateLimiterAbstract | RateLimiterStoreAbstract =
    redis === undefined
      ? memory
      : new RateLimiterRedis({
          ...base,
          // ioredis (not node-redis): the library drives it through defineCommand, so
          // useRedisPackage stays off.
          storeClient: redis,
          // Without this a disconnected ioredis would queue the command and hold the sign-in.
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory,
        });

  /**
   * Locks a key for blockSeconds from now, KEEPING its count (at least `points`). The library's
   * block() would overwrite the count with points + 1; attempts that were refused before the
   * lock give their place back afterwards, and those refunds would then pull the count under
   * the limit and let new attempts through (seen as 14 of 100 across two replicas).
   */
  const lock = async (key: string): Promise<void> => {
    if (redis !== undefined && redis.status === 'ready') {
      try {
        await redis.eval(LOCK_SCRIPT, 1, limiter.getKey(key), String(blockSeconds * 1000), String(points));
        return;
      } catch {
        // fall through to the per-replica stand-in, as the library's own operations do
      }
    }
    memory.lock(limiter.getKey(key), points, blockSeconds);
  };

  return {
    async check(key) {
      const res = await limiter.get(key);
      if (res === null || res.consumedPoints < points) return { blocked: false };
      return { blocked: true, retryAfterMs: Math.max(1, res.msBeforeNext) };
    },
    async reserve(key) {
      try {
        const res = await limiter.consume(key, 1);
        return { granted: true, position: res.consumedPoints };
      } catch (e) {
        if (e instanceof RateLimiterRes) return { granted: false, retryAfterMs: Math.max(1, e.msBeforeNext) };
        throw e;
      }
    },
    async failed(key, reservation) {
      if (reservation.position < points) return false;
      if (blockSeconds > 0) await lock(key);
      // Positions come from one atomic INCR: exactly one reservation holds the last place.
      return reservation.position === points;
    },
    async refund(key) {
      await limiter.reward(key, 1);
    },
    async fail(key) {
      let res: RateLimiterRes;
      try {
        res = await limiter.consume(key, 1);
      } catch (e) {
        if (e instanceof RateLimiterRes) return false; // already past the limit, already blocked
        throw e;
      }
      if (res.consumedPoints < points) return false;
      if (blockSeconds > 0) await lock(key);
      // The counter is one atomic INCR in Redis: exactly one failure, on one replica, sees the limit.
      return res.consumedPoints === points;
    },
    async reset(key) {
      await limiter.delete(key);
    },
    storeFallbacks: () => fallbacks,
  };
}

/** max(count, points) for PX milliseconds, in one step: KEYS[1] = key, ARGV = [ms, points]. */
const LOCK_SCRIPT = `local v = tonumber(redis.call('get', KEYS[1]) or '0')
local floor = tonumber(ARGV[2])
if v < floor then v = floor end
redis.call('set', KEYS[1], v, 'PX', ARGV[1])
return v`;

interface StoredCount {
  consumedPoints: number;
}
/** The part of rate-limiter-flexible's in-memory store that lock() needs (not in its typings). */
interface MemoryStore {
  get(key: string): StoredCount | null;
  set(key: string, value: number, durationSec: number): StoredCount;
}

/**
 * The per-process limiter: the counters when there is no Redis, the stand-in while Redis is
 * unreachable (then every operation is counted as a fallback).
 */
class LockingMemoryLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse?: () => void,
  ) {
    super(options);
  }

  /** See createLimiter's lock(); synchronous, so nothing runs between the read and the write. */
  lock(rlKey: string, points: number, blockSeconds: number): void {
    this.used();
    const store = (this as unknown as { _memoryStorage: MemoryStore })._memoryStorage;
    store.set(rlKey, Math.max(store.get(rlKey)?.consumedPoints ?? 0, points), blockSeconds);
  }

  private used(): void {
    this.onUse?.();
  }
  override consume(...args: Parameters<RateLimiterMemory['consume']>) {
    this.used();
    return super.consume(...args);
  }
  override get(...args: Parameters<RateLimiterMemory['get']>) {
    this.used();
    return super.get(...args);
  }
  override block(...args: Parameters<RateLimiterMemory['block']>) {
    this.used();
    return super.block(...args);
  }
  override reward(...args: Parameters<RateLimiterMemory['reward']>) {
    this.used();
    return super.reward(...args);
  }
  override delete(...args: Parameters<RateLimiterMemory['delete']>) {
    this.used();
    return super.delete(...args);
  }
}
