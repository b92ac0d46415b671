import type { Redis } from 'ioredis';
import type { Logger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter } from '../abuse/attempt-limiter.js';

export interface MfaLimiterOptions {
  /** Shared counters for all replicas; absent = this process only. */
  redis?: Redis;
  /** Redis key namespace, e.g. "latch:". */
  keyPrefix: string;
  /** Wrong codes per user before a lock (default 10). */
  maxFailures?: number;
  /** Window and lock length (default one hour). */
  lockSeconds?: number;
  logger?: Logger;
}

/**
 * Second-factor code checks per user, across challenges and signed-in calls (A3), configured by
 * MFA_MAX_FAILURES_PER_USER and MFA_LOCK_SECONDS. With ±1 step three TOTP codes are valid at a
 * time, so 10 guesses an hour give an attacker who already has the password about 3·10⁻⁵ an hour
 * (about 2 % over a month of non-stop trying, each round of five needing a fresh password
 * sign-in). MfaService reserves a place before each check (A4), so the limit is exact under
 * concurrency, as the per-challenge one is.
 */
export function createMfaAttemptLimiter(options: MfaLimiterOptions): AttemptLimiter {
  const lock = options.lockSeconds ?? 3600;
  return createLimiter({
    points: options.maxFailures ?? 10,
    durationSeconds: lock,
    blockSeconds: lock,
    keyPrefix: `${options.keyPrefix}mfa-fail:user`,
    redis: options.redis,
    logger: options.logger,
  });
}
