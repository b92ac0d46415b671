import type { Redis } from 'ioredis';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter } from './attempt-limiter.js';

export interface SignupThrottleOptions {
  /** Shared counters for all replicas (REDIS_URL); absent = in-process counters. */
  redis?: Redis;
  /** Redis key namespace, e.g. "latch:". */
  keyPrefix: string;
  /** SIGNUP_MAX_PER_IP: Register attempts one client address may make per window. */
  maxPerIp: number;
  /** SIGNUP_IP_WINDOW_SECONDS. */
  windowSeconds: number;
  logger?: Logger;
  /**
   * SIGNUP_REFUSAL_DELAY_MS: how long a refusal of a spent address is held before it is sent (at
   * most until the window ends); 0 answers at once. See `reserve`.
   */
  refusalDelayMs?: number;
  /** At most this many refusals held at once; beyond it they are answered at once. */
  maxHeldRefusals?: number;
}

/** Oldest entries are dropped past this; a dropped address just asks Redis again. */
const MAX_SPENT_ADDRESSES = 10_000;

const DEFAULT_MAX_HELD_REFUSALS = 10_000;

const tooManySignups = (retryAfterMs: number) =>
  new LatchError('resource_exhausted', 'ERR_TOO_MANY_SIGNUPS', 'too many sign-ups from this address, try again later', { retryAfterMs });

/** A granted sign-up slot; give it back with refund() only when the attempt was never processed. */
export interface SignupSlot {
  readonly ip: string;
}

/**
 * Register attempts per client address (docs/security.md A5). The slot is reserved (one atomic
 * increment) before the password policy and before any hashing, so a parallel flood gets at
 * most maxPerIp attempts through per window, on every replica together. Every processed attempt
 * counts, whether it created an account or was refused (taken email, weak password): a taken
 * email answers differently from a free one, so counting those limits probing for accounts
 * too. Only an attempt that was never processed (hashing busy) gets its slot back.
 */
export class SignupThrottle {
  private readonly limiter: AttemptLimiter;
  /**
   * Addresses known to be spent, until when (ms). A flood is refused from here without a Redis
   * round trip each time: under 80 concurrent Register calls that round trip was the flood's main
   * cost on the event loop that sign-in shares. The window is fixed, so a refusal stays right
   * until it ends (a slot given back on another replica meanwhile is the only thing missed).
   */
  private readonly spent = new Map<string, number>();
  private readonly refusalDelayMs: number;
  private readonly maxHeld: number;
  private held = 0;

  constructor(options: SignupThrottleOptions) {
    this.limiter = createLimiter({
      points: options.maxPerIp,
      durationSeconds: options.windowSeconds,
      blockSeconds: 0,
      keyPrefix: `${options.keyPrefix}signup:ip`,
      redis: options.redis,
      logger: options.logger,
    });
    this.refusalDelayMs = options.refusalDelayMs ?? 0;
    this.maxHeld = options.maxHeldRefusals ?? DEFAULT_MAX_HELD_REFUSALS;
  }

  /** Throws resource_exhausted ERR_TOO_MANY_SIGNUPS (with retryAfterMs) when the address is spent. */
  async reserve(ip: string): Promise<SignupSlot> {
    // No address (no peer information): one shared bucket would let one client shut sign-up for all.
    if (ip === '') return { ip };
    const now = Date.now();
    const until = this.spent.get(ip);
    if (until !== undefined) {
      if (until > now) return this.refuse(until);
      this.spent.delete(ip);
    }
    const r = await this.limiter.reserve(ip);
    if (!r.granted) {
      if (this.spent.size >= MAX_SPENT_ADDRESSES) this.spent.delete(this.spent.keys().next().value!);
      this.spent.set(ip, now + r.retryAfterMs);
      // A fixed window: refused attempts add to a spent count but never lengthen the wait.
      throw tooManySignups(r.retryAfterMs);
    }
    return { ip };
  }

  /**
   * A refusal of an address already known to be spent is held for a moment before it is sent.
   * A flood client that sends its next Register as soon as the last one is answered (the usual
   * shape: a fixed number of concurrent requests) then gets its refusals at the pace of the
   * delay instead of as fast as the event loop can write them, and that event loop is the one
   * sign-in of real users needs. Holding costs a timer per waiting call; past maxHeld waiting
   * calls the refusal is sent at once, so memory stays bounded whatever the client sends.
   */
  private async refuse(until: number): Promise<never> {
    const delay = Math.min(this.refusalDelayMs, until - Date.now());
    if (delay > 0 && this.held < this.maxHeld) {
      this.held++;
      try {
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      } finally {
        this.held--;
      }
    }
    throw tooManySignups(Math.max(1, until - Date.now()));
  }

  /** Refusals being held right now (tests, metrics). */
  heldRefusals(): number {
    return this.held;
  }

  async refund(slot: SignupSlot): Promise<void> {
    if (slot.ip !== '') await this.limiter.refund(slot.ip);
  }

  /** Operations answered per replica because Redis failed (metrics). */
  storeFallbacks(): number {
    return this.limiter.storeFallbacks();
  }
}
