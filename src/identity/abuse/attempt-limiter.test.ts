import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.js';
import { createLimiter } from './attempt-limiter.js';

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
