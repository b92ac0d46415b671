import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithRedis, services } from '../../../test/helpers/services.js';
import { createLogger } from '../../shared/logger.js';
import { createLimiter, type AttemptLimiter } from './attempt-limiter.js';

describe('createLimiter (memory)', () => {
  it('blocks a key on the failure that reaches the limit, for blockSeconds', async () => {
    const limiter = createLimiter({ points: 3, durationSeconds: 3600, blockSeconds: 120, keyPrefix: 't' });
    for (let i = 0; i < 3; i++) {
      expect(await limiter.check('k')).toEqual({ blocked: false });
      await limiter.fail('k');
    }
    const state = await limiter.check('k');
    expect(state.blocked).toBe(true);
    // The block, not the hour-long failure window, decides the wait.
    if (state.blocked) expect(state.retryAfterMs).toBeGreaterThan(110_000);
    if (state.blocked) expect(state.retryAfterMs).toBeLessThanOrEqual(120_000);
    await limiter.fail('k'); // failing while blocked is harmless
    expect((await limiter.check('k')).blocked).toBe(true);
    expect(await limiter.check('other')).toEqual({ blocked: false });
  });

  it('without blockSeconds stays blocked until the window ends', async () => {
    const limiter = createLimiter({ points: 2, durationSeconds: 600, blockSeconds: 0, keyPrefix: 't' });
    await limiter.fail('k');
    await limiter.fail('k');
    const state = await limiter.check('k');
    expect(state.blocked && state.retryAfterMs).toBeGreaterThan(590_000);
  });

  it('reset clears the count', async () => {
    const limiter = createLimiter({ points: 2, durationSeconds: 600, blockSeconds: 60, keyPrefix: 't' });
    await limiter.fail('k');
    await limiter.reset('k');
    await limiter.fail('k');
    expect(await limiter.check('k')).toEqual({ blocked: false });
    await limiter.fail('k');
    expect((await limiter.check('k')).blocked).toBe(true);
    await limiter.reset('k');
    expect(await limiter.check('k')).toEqual({ blocked: false });
  });

  it('unblocks when the block expires', async () => {
    const limiter = createLimiter({ points: 1, durationSeconds: 600, blockSeconds: 1, keyPrefix: 't' });
    await limiter.fail('k');
    expect((await limiter.check('k')).blocked).toBe(true);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await limiter.check('k')).toEqual({ blocked: false });
  });
});

describe('createLimiter with Redis unavailable', () => {
  it('keeps limiting in process, logs and counts the fallback, and does not wait for Redis', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    // Nothing listens on port 1; the client never becomes ready.
    const redis = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      const limiter = createLimiter({
        points: 2,
        durationSeconds: 600,
        blockSeconds: 60,
        keyPrefix: `t-${randomUUID()}`,
        redis,
        logger: createLogger('info', sink),
      });
      const started = performance.now();
      await limiter.fail('k');
      await limiter.fail('k');
      const state = await limiter.check('k');
      expect(performance.now() - started).toBeLessThan(500);
      expect(state.blocked && state.retryAfterMs).toBeGreaterThan(50_000);
      expect(limiter.storeFallbacks()).toBeGreaterThanOrEqual(3);
      expect(lines.filter((l) => l.includes('rate limit store unavailable'))).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  });
});

describe('createLimiter options', () => {
  it('refuses nonsense limits', () => {
    expect(() => createLimiter({ points: 0, durationSeconds: 1, blockSeconds: 0, keyPrefix: 't' })).toThrow(RangeError);
    expect(() => createLimiter({ points: 1, durationSeconds: 0, blockSeconds: 0, keyPrefix: 't' })).toThrow(RangeError);
  });
});

describe('createLimiter reserve (memory)', () => {
  it('lets exactly `points` of many parallel reservations through, and the last failure locks', async () => {
    const limiter = createLimiter({ points: 10, durationSeconds: 600, blockSeconds: 120, keyPrefix: 't' });
    const results = await Promise.all(Array.from({ length: 100 }, () => limiter.reserve('k')));
    const granted = results.filter((r) => r.granted);
    expect(granted).toHaveLength(10);
    const refused = results.filter((r) => !r.granted);
    for (const r of refused) if (!r.granted) expect(r.retryAfterMs).toBeGreaterThan(0);
    const locks = await Promise.all(granted.map((r) => (r.granted ? limiter.failed('k', r) : false)));
    expect(locks.filter(Boolean)).toHaveLength(1);
    const state = await limiter.check('k');
    expect(state.blocked && state.retryAfterMs).toBeGreaterThan(110_000);
  });

  it('a refund gives the attempt back; reset starts over', async () => {
    const limiter = createLimiter({ points: 2, durationSeconds: 600, blockSeconds: 60, keyPrefix: 't' });
    const a = await limiter.reserve('k');
    await limiter.refund('k');
    const b = await limiter.reserve('k');
    const c = await limiter.reserve('k');
    expect([a.granted, b.granted, c.granted]).toEqual([true, true, true]);
    expect((await limiter.reserve('k')).granted).toBe(false);
    await limiter.reset('k');
    expect((await limiter.reserve('k')).granted).toBe(true);
  });
});

/**
 * Attempts refused while the last allowed one is still being checked give their place back
 * after it has failed and locked the key; those late refunds must not reopen the lock.
 */
async function lockSurvivesLateRefunds(limiter: AttemptLimiter, key: string) {
  const granted = [];
  for (let i = 0; i < 10; i++) granted.push(await limiter.reserve(key));
  const late = [await limiter.reserve(key), await limiter.reserve(key), await limiter.reserve(key)];
  expect(late.map((r) => r.granted)).toEqual([false, false, false]);
  for (const r of granted.slice(0, 9)) expect(r.granted && (await limiter.failed(key, r))).toBe(false);
  const last = granted[9]!;
  expect(last.granted && (await limiter.failed(key, last))).toBe(true);
  for (let i = 0; i < late.length; i++) await limiter.refund(key);
  for (let i = 0; i < 5; i++) {
    expect((await limiter.reserve(key)).granted).toBe(false);
    await limiter.refund(key);
  }
  const state = await limiter.check(key);
  expect(state.blocked && state.retryAfterMs).toBeGreaterThan(110_000);
  expect(state.blocked && state.retryAfterMs).toBeLessThanOrEqual(120_000);
}

describe('createLimiter lock (memory)', () => {
  it('refunds of attempts refused before the lock do not reopen it', async () => {
    await lockSurvivesLateRefunds(createLimiter({ points: 10, durationSeconds: 3600, blockSeconds: 120, keyPrefix: 't' }), 'k');
  });
});

describeWithRedis('createLimiter lock (Redis)', () => {
  const prefix = `latch-test-${randomUUID()}:`;
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(services().redisUrl!);
    await new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('refunds of attempts refused before the lock do not reopen it', async () => {
    const limiter = createLimiter({ points: 10, durationSeconds: 3600, blockSeconds: 120, keyPrefix: `${prefix}lock`, redis });
    await lockSurvivesLateRefunds(limiter, 'k');
    expect(limiter.storeFallbacks()).toBe(0);
  });

  it('a lock on a key whose count was reset still holds for blockSeconds', async () => {
    const limiter = createLimiter({ points: 2, durationSeconds: 3600, blockSeconds: 120, keyPrefix: `${prefix}reset`, redis });
    const a = await limiter.reserve('k');
    const b = await limiter.reserve('k');
    await limiter.reset('k'); // a success elsewhere, while these two were in flight
    expect(a.granted && (await limiter.failed('k', a))).toBe(false);
    expect(b.granted && (await limiter.failed('k', b))).toBe(true);
    expect((await limiter.reserve('k')).granted).toBe(false);
  });
});
