import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter, type LimitState } from './attempt-limiter.js';

export interface LoginThrottleOptions {
  /** Shared counters for all replicas (REDIS_URL); absent = in-process counters. */
  redis?: Redis;
  /** Redis key namespace, e.g. "latch:". */
  keyPrefix: string;
  /** LOGIN_MAX_FAILURES_PER_ACCOUNT: consecutive failures before the account locks (≤ 100). */
  maxFailuresPerAccount: number;
  /** LOGIN_ACCOUNT_LOCK_SECONDS. */
  accountLockSeconds: number;
  /** LOGIN_MAX_FAILURES_PER_IP: failures from one address within its window. */
  maxFailuresPerIp: number;
  /** LOGIN_IP_WINDOW_SECONDS. */
  ipWindowSeconds: number;
  /**
   * How long an account's failures are remembered without a success; default one day, so slow
   * guessing still adds up to a lock.
   */
  accountWindowSeconds?: number;
  logger?: Logger;
}

const DAY_SECONDS = 86_400;

/**
 * Failed sign-in limits of SECURITY.md A1 [NIST SP 800-63B rev 4 §3.2.2, ASVS 6.1.1, 6.3.1]:
 * consecutive failures per account (reset by a success; after the maximum the account is
 * locked for accountLockSeconds and then counts again from zero, so at most
 * maxFailuresPerAccount guesses per lock period) and failures per client address per window.
 * The account key is the normalised email whether or not the account exists, so the answer
 * does not reveal which emails are registered; it is stored hashed, so Redis holds no emails.
 * Password reset does not consult this throttle, so a locked owner can still get back in.
 *
 * Checks and increments are separate round trips: concurrent attempts that pass the check
 * together can overshoot the limit by their number, which the bounded hashing queue (A2) caps.
 */
export class LoginThrottle {
  private readonly account: AttemptLimiter;
  private readonly ip: AttemptLimiter;

  constructor(options: LoginThrottleOptions) {
    if (options.maxFailuresPerAccount > 100) throw new RangeError('maxFailuresPerAccount must be ≤ 100');
    const { redis, keyPrefix, logger } = options;
    this.account = createLimiter({
      points: options.maxFailuresPerAccount,
      durationSeconds: Math.max(options.accountWindowSeconds ?? DAY_SECONDS, options.accountLockSeconds),
      blockSeconds: options.accountLockSeconds,
      keyPrefix: `${keyPrefix}login-fail:account`,
      redis,
      logger,
    });
    this.ip = createLimiter({
      points: options.maxFailuresPerIp,
      durationSeconds: options.ipWindowSeconds,
      blockSeconds: 0,
      keyPrefix: `${keyPrefix}login-fail:ip`,
      redis,
      logger,
    });
  }

  /** Throws resource_exhausted ERR_TOO_MANY_ATTEMPTS (with retryAfterMs) when either limit is spent. */
  async assertAllowed(accountKey: string, ip: string): Promise<void> {
    const [account, address] = await Promise.all([
      this.account.check(hashKey(accountKey)),
      ip === '' ? notBlocked : this.ip.check(ip),
    ]);
    const retryAfterMs = Math.max(retryOf(account), retryOf(address));
    if (retryAfterMs > 0) {
      throw new LatchError('resource_exhausted', 'ERR_TOO_MANY_ATTEMPTS', 'too many failed sign-in attempts, try again later', {
        retryAfterMs,
      });
    }
  }

  /** Counts a failed attempt; `accountLocked` is true for the failure that locked the account. */
  async recordFailure(accountKey: string, ip: string): Promise<{ accountLocked: boolean }> {
    const [accountLocked] = await Promise.all([this.account.fail(hashKey(accountKey)), ip === '' ? undefined : this.ip.fail(ip)]);
    return { accountLocked };
  }

  /** Clears the account's consecutive failures; the address keeps its count for its window. */
  async recordSuccess(accountKey: string, _ip: string): Promise<void> {
    await this.account.reset(hashKey(accountKey));
  }

  /** Operations answered per replica because Redis failed (metrics). */
  storeFallbacks(): number {
    return this.account.storeFallbacks() + this.ip.storeFallbacks();
  }
}

// An unknown client address (no peer information) is not throttled as one shared bucket:
// that would let one client lock everyone else out.
const notBlocked: LimitState = { blocked: false };

const retryOf = (s: LimitState) => (s.blocked ? s.retryAfterMs : 0);

const hashKey = (accountKey: string) => createHash('sha256').update(accountKey).digest('base64url');
