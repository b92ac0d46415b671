import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter, type Reservation } from './attempt-limiter.js';

export interface LoginThrottleOptions {
  /** Shared counters for all replicas (REDIS_URL); absent = in-process counters. */
  redis?: Redis;
  /** Redis key namespace, e.g. "latch:". */
  keyPrefix: string;
  /** LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP: consecutive failures before (account, address) locks. */
  maxFailuresPerAccountAndIp: number;
  /** LOGIN_MAX_FAILURES_PER_ACCOUNT: consecutive failures from all addresses before the account locks (≤ 100). */
  maxFailuresPerAccount: number;
  /** LOGIN_ACCOUNT_LOCK_SECONDS: how long either lock lasts. */
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

/** What a lock-worthy failure did; each flag is true for exactly one failure per lock. */
export interface FailureOutcome {
  /** This failure locked the pair (account, this address). */
  pairLocked: boolean;
  /** This failure reached the ceiling over all addresses and locked the account. */
  accountLocked: boolean;
}

type Granted = Extract<Reservation, { granted: true }>;

interface Held {
  kind: 'pair' | 'ip' | 'account';
  limiter: AttemptLimiter;
  key: string;
  reservation: Granted;
}

/** An attempt that holds a reservation on every key; settle it exactly once. */
export interface LoginAttempt {
  readonly held: readonly Held[];
}

const DAY_SECONDS = 86_400;

/**
 * Failed sign-in limits of docs/security.md A1, A4, A6 [NIST SP 800-63B rev 4 §3.2.2, ASVS 6.1.1, 6.3.1]:
 *
 * - (account, client address): maxFailuresPerAccountAndIp consecutive failures lock that pair for
 *   accountLockSeconds. Someone guessing from their own address locks only themselves; the owner
 *   elsewhere still signs in (A6).
 * - account, over all addresses: maxFailuresPerAccount (≤ 100) consecutive failures lock the
 *   account itself, so spreading guesses over many addresses still ends at 100 per lock period.
 * - client address: maxFailuresPerIp failures within ipWindowSeconds, over all accounts.
 *
 * A success resets both account counters and gives the address its attempt back. Account keys
 * are the normalised email whether or not the account exists, so answers do not reveal which
 * emails are registered; they are stored hashed, so Redis holds no emails.
 *
 * Every attempt RESERVES its place on each key before the password is checked (one atomic
 * increment per key), so N parallel attempts get at most the limit through to Argon2 (A4). Keys
 * are taken narrowest first (pair, address, account) and an attempt refused on one gives back
 * what it took, including its own increment on the refusing key: counts then equal real
 * failures plus attempts in flight, and a flood refused at the pair never inflates the
 * account-wide count that decides the account lock.
 */
export class LoginThrottle {
  private readonly pair: AttemptLimiter;
  private readonly account: AttemptLimiter;
  private readonly ip: AttemptLimiter;
  private readonly lockMs: number;

  constructor(options: LoginThrottleOptions) {
    const { redis, keyPrefix, logger, maxFailuresPerAccount, maxFailuresPerAccountAndIp, accountLockSeconds } = options;
    if (maxFailuresPerAccount > 100) throw new RangeError('maxFailuresPerAccount must be ≤ 100');
    if (maxFailuresPerAccount < maxFailuresPerAccountAndIp) throw new RangeError('maxFailuresPerAccount must be ≥ maxFailuresPerAccountAndIp');
    const durationSeconds = Math.max(options.accountWindowSeconds ?? DAY_SECONDS, accountLockSeconds);
    this.lockMs = accountLockSeconds * 1000;
    this.pair = createLimiter({
      points: maxFailuresPerAccountAndIp,
      durationSeconds,
      blockSeconds: accountLockSeconds,
      keyPrefix: `${keyPrefix}login-fail:pair`,
      redis,
      logger,
    });
    this.account = createLimiter({
      points: maxFailuresPerAccount,
      durationSeconds,
      blockSeconds: accountLockSeconds,
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

  /**
   * Reserves one attempt on every key, or throws resource_exhausted ERR_TOO_MANY_ATTEMPTS (with
   * retryAfterMs) having taken nothing. Call before any Argon2 work; settle the result with
   * succeeded(), failed() or cancel().
   */
  async begin(accountKey: string, ip: string): Promise<LoginAttempt> {
    const steps: { kind: Held['kind']; limiter: AttemptLimiter; key: string; capMs: number }[] = [
      // Without an address the pair is (account, unknown): still bounded per account.
      { kind: 'pair', limiter: this.pair, key: hashKey(`${accountKey}\n${ip}`), capMs: this.lockMs },
      // An unknown address gets no per-address key: one shared bucket would let one client lock
      // everyone else out.
      ...(ip === '' ? [] : [{ kind: 'ip' as const, limiter: this.ip, key: ip, capMs: Infinity }]),
      { kind: 'account', limiter: this.account, key: hashKey(accountKey), capMs: this.lockMs },
    ];
    const held: Held[] = [];
    for (const { kind, limiter, key, capMs } of steps) {
      let reservation: Reservation;
      try {
        reservation = await limiter.reserve(key);
      } catch (err) {
        await giveBack(held).catch(() => undefined);
        throw err;
      }
      if (!reservation.granted) {
        await Promise.all([limiter.refund(key), giveBack(held)]);
        // A spent account key is either locked (for at most the lock time) or full of attempts
        // in flight that settle within seconds; its day-long window is not the wait.
        throw new LatchError('resource_exhausted', 'ERR_TOO_MANY_ATTEMPTS', 'too many failed sign-in attempts, try again later', {
          retryAfterMs: Math.min(reservation.retryAfterMs, capMs),
        });
      }
      held.push({ kind, limiter, key, reservation });
    }
    return { held };
  }

  /** The password was right: both account counters start over, the address gets its attempt back. */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    await Promise.all(attempt.held.map((h) => (h.kind === 'ip' ? h.limiter.refund(h.key) : h.limiter.reset(h.key))));
  }

  /** The password was wrong (or the account unknown or disabled): the reservations stay as failures. */
  async failed(attempt: LoginAttempt): Promise<FailureOutcome> {
    const outcome: FailureOutcome = { pairLocked: false, accountLocked: false };
    await Promise.all(
      attempt.held.map(async (h) => {
        const locked = await h.limiter.failed(h.key, h.reservation);
        if (h.kind === 'pair') outcome.pairLocked = locked;
        else if (h.kind === 'account') outcome.accountLocked = locked;
      }),
    );
    return outcome;
  }

  /** No password was checked (hashing shed the call, the database failed): every reservation back. */
  async cancel(attempt: LoginAttempt): Promise<void> {
    await giveBack(attempt.held);
  }

  /**
   * A completed password reset (docs/security.md F4): the account's lock and count start over,
   * and so does the pair of the address the reset came from. Pairs of other addresses stay: they
   * lock only whoever guessed from there (A6).
   */
  async unlockAccount(accountKey: string, ip: string): Promise<void> {
    await Promise.all([this.account.reset(hashKey(accountKey)), this.pair.reset(hashKey(`${accountKey}\n${ip}`))]);
  }

  /** Operations answered per replica because Redis failed (metrics). */
  storeFallbacks(): number {
    return this.pair.storeFallbacks() + this.account.storeFallbacks() + this.ip.storeFallbacks();
  }
}

async function giveBack(held: readonly Held[]): Promise<void> {
  await Promise.all(held.map((h) => h.limiter.refund(h.key)));
}

const hashKey = (accountKey: string) => createHash('sha256').update(accountKey).digest('base64url');
