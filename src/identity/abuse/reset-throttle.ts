import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter } from './attempt-limiter.js';

export interface ResetThrottleOptions {
  /** Shared counters for all replicas (REDIS_URL); absent = in-process counters. */
  redis?: Redis;
  /** Redis key namespace, e.g. "latch:". */
  keyPrefix: string;
  /** PASSWORD_RESET_MAX_PER_IP: RequestPasswordReset calls one client address may make per window. */
  maxPerIp: number;
  /** PASSWORD_RESET_MAX_PER_EMAIL: reset links one email may receive per window. */
  maxPerEmail: number;
  /** PASSWORD_RESET_WINDOW_SECONDS (fixed window, both limits). */
  windowSeconds: number;
  logger?: Logger;
}

/**
 * Password-reset request limits (docs/security.md F1, A5). The address limit is answered
 * (RESOURCE_EXHAUSTED): it says nothing about any account. The email limit is never answered:
 * the caller sends nothing more and gives the same answer as for a sent link, so it reveals
 * neither the limit nor whether the email is registered. Email keys are counted whether or not
 * the account exists, and stored hashed, so Redis holds no emails.
 */
export class ResetThrottle {
  private readonly ip: AttemptLimiter;
  private readonly email: AttemptLimiter;

  constructor(options: ResetThrottleOptions) {
    const base = { durationSeconds: options.windowSeconds, blockSeconds: 0, redis: options.redis, logger: options.logger };
    this.ip = createLimiter({ ...base, points: options.maxPerIp, keyPrefix: `${options.keyPrefix}reset:ip` });
    this.email = createLimiter({ ...base, points: options.maxPerEmail, keyPrefix: `${options.keyPrefix}reset:email` });
  }

  /** Counts one request from the address; throws resource_exhausted ERR_TOO_MANY_RESET_REQUESTS when spent. */
  async admitAddress(ip: string): Promise<void> {
    // No address (no peer information): one shared bucket would let one client stop resets for all.
    if (ip === '') return;
    const r = await this.ip.reserve(ip);
    if (!r.granted) {
      throw new LatchError('resource_exhausted', 'ERR_TOO_MANY_RESET_REQUESTS', 'too many password reset requests from this address, try again later', {
        retryAfterMs: r.retryAfterMs,
      });
    }
  }

  /** Counts one link for the (normalised) email; false when its window is spent. */
  async admitEmail(email: string): Promise<boolean> {
    const r = await this.email.reserve(createHash('sha256').update(email).digest('base64url'));
    return r.granted;
  }

  /** Operations answered per replica because Redis failed (metrics). */
  storeFallbacks(): number {
    return this.ip.storeFallbacks() + this.email.storeFallbacks();
  }
}
