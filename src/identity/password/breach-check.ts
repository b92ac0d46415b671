import { createHash } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { RangeCache } from './breach-check-cache.js';
import type { BreachCheckCounter } from './breach-check-metrics.js';
import { fetchRange, RangeFetchError, type BreachedSuffixes } from './breach-check-range.js';
import { normalizePassword } from './normalize.js';

/**
 * docs/security.md P2: the check every flow that accepts a new password runs after the policy
 * (Register, ChangePassword, and password reset). It throws ERR_PASSWORD_BREACHED
 * (invalid_argument on `field`) or, with the range API down and HIBP_FAILURE_MODE=closed,
 * ERR_BREACH_CHECK_UNAVAILABLE (unavailable).
 */
export interface PasswordBreachCheck {
  assertNotBreached(password: string, field: string): Promise<void>;
}

/** HIBP_ENABLED=false: new passwords get the policy (blocklist included) and nothing more. */
export const breachCheckDisabled: PasswordBreachCheck = {
  async assertNotBreached() {},
};

/** The range API asks every client to name itself in the User-Agent. */
export const BREACH_CHECK_USER_AGENT = 'Latch-identity-service (password breach check)';

export const passwordBreached = (field: string) =>
  new LatchError('invalid_argument', 'ERR_PASSWORD_BREACHED', 'this password appeared in a data breach; choose another one', { field });

export const breachCheckUnavailable = (cause: unknown) =>
  new LatchError('unavailable', 'ERR_BREACH_CHECK_UNAVAILABLE', 'the password breach check is unavailable; try again later', { cause });

export interface HibpBreachCheckOptions {
  baseUrl: string;
  timeoutMs: number;
  failureMode: 'open' | 'closed';
  cacheSize: number;
  cacheTtlMs: number;
  userAgent: string;
  clock: Clock;
  logger: Logger;
  count: BreachCheckCounter;
}

/**
 * The k-anonymity check: SHA-1 of the password (in the NFKC form that is hashed and stored), the
 * first 5 hex characters go to `{HIBP_URL}/range/`, the other 35 are looked up in the answer here.
 * Concurrent checks of one prefix share one request, and answers are cached by prefix.
 */
export class HibpBreachCheck implements PasswordBreachCheck {
  private readonly cache: RangeCache;
  private readonly inFlight = new Map<string, Promise<BreachedSuffixes>>();

  constructor(private readonly o: HibpBreachCheckOptions) {
    this.cache = new RangeCache(o.cacheSize, o.cacheTtlMs, o.clock);
  }

  async assertNotBreached(password: string, field: string): Promise<void> {
    const sha1 = createHash('sha1').update(normalizePassword(password), 'utf8').digest('hex').toUpperCase();
    const prefix = sha1.slice(0, 5);
    const suffix = sha1.slice(5);
    let range = this.cache.get(prefix);
    const source = range ? 'cache' : 'api';
    if (!range) {
      try {
        range = await this.fetchShared(prefix);
      } catch (err) {
        this.failed(err);
        return;
      }
    }
    if (range.has(suffix)) {
      this.o.count('breached', source);
      throw passwordBreached(field);
    }
    this.o.count('clean', source);
  }

  private fetchShared(prefix: string): Promise<BreachedSuffixes> {
    let pending = this.inFlight.get(prefix);
    if (!pending) {
      pending = fetchRange(prefix, { baseUrl: this.o.baseUrl, timeoutMs: this.o.timeoutMs, userAgent: this.o.userAgent })
        .then((range) => {
          this.cache.set(prefix, range);
          return range;
        })
        .finally(() => this.inFlight.delete(prefix));
      this.inFlight.set(prefix, pending);
    }
    return pending;
  }

  /** Open: accept unchecked, warn and count. Closed: refuse for now. Neither logs the prefix. */
  private failed(err: unknown): void {
    const reason = err instanceof RangeFetchError ? err.message : 'range API request failed';
    if (this.o.failureMode === 'closed') {
      this.o.count('error_closed', 'api');
      this.o.logger.warn({ reason }, 'password breach check failed: new password refused (HIBP_FAILURE_MODE=closed)');
      throw breachCheckUnavailable(err);
    }
    this.o.count('error_open', 'api');
    this.o.logger.warn({ reason }, 'password breach check failed: new password accepted unchecked (HIBP_FAILURE_MODE=open)');
  }
}
