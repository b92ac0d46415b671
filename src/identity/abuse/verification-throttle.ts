import type { Redis } from 'ioredis';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter } from './attempt-limiter.js';

export interface VerificationThrottleOptions {
  /** Shared counters for all replicas (REDIS_URL); absent = in-process counters. */
  redis?: Redis;
  /** Redis key namespace, e.g. "latch:". */
  keyPrefix: string;
  /** EMAIL_VERIFICATION_MAX_PER_USER: new verification links one account may get per window. */
  maxPerUser: number;
  /** EMAIL_VERIFICATION_WINDOW_SECONDS (fixed window). */
  windowSeconds: number;
  logger?: Logger;
}

/**
 * How many new verification links an account may ask for (ResendVerificationEmail, and the
 * sign-in refused under REQUIRE_VERIFIED_EMAIL). Counted per user id, so one account cannot
 * flood its own inbox (or anyone's, through an address it was given) beyond the limit.
 */
export class VerificationThrottle {
  private readonly perUser: AttemptLimiter;

  constructor(options: VerificationThrottleOptions) {
    this.perUser = createLimiter({
      points: options.maxPerUser,
      durationSeconds: options.windowSeconds,
      blockSeconds: 0,
      keyPrefix: `${options.keyPrefix}verify:user`,
      redis: options.redis,
      logger: options.logger,
    });
  }

  /** Counts one link for the user; throws resource_exhausted ERR_TOO_MANY_VERIFICATION_EMAILS when spent. */
  async admit(userId: string): Promise<void> {
    const r = await this.perUser.reserve(userId);
    if (!r.granted) {
      throw new LatchError('resource_exhausted', 'ERR_TOO_MANY_VERIFICATION_EMAILS', 'too many verification emails requested for this account, try again later', {
        retryAfterMs: r.retryAfterMs,
      });
    }
  }

  /** Gives a counted link back when none was sent after all (already verified, disabled). */
  async refund(userId: string): Promise<void> {
    await this.perUser.refund(userId);
  }

  /** Operations answered per replica because Redis failed (metrics). */
  storeFallbacks(): number {
    return this.perUser.storeFallbacks();
  }
}
