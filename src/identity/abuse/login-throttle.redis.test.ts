import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithRedis, services } from '../../../test/helpers/services.js';
import { LatchError } from '../../shared/errors.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

async function refusal(p: Promise<void>): Promise<LatchError | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    return e as LatchError;
  }
}

const ready = (r: Redis) =>
  r.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => r.once('ready', () => resolve()));

describeWithRedis('LoginThrottle on Redis (A1, shared by replicas)', () => {
  const prefix = `latch-test-${randomUUID()}:`;
  let redisA: Redis;
  let redisB: Redis;
  const options: Omit<LoginThrottleOptions, 'redis'> = {
    keyPrefix: prefix,
    maxFailuresPerAccount: 4,
    accountLockSeconds: 600,
    maxFailuresPerIp: 6,
    ipWindowSeconds: 300,
  };
  // Two replicas: separate clients, separate throttles, one Redis.
  let replicaA: LoginThrottle;
  let replicaB: LoginThrottle;

  beforeAll(async () => {
    redisA = new Redis(services().redisUrl!);
    redisB = new Redis(services().redisUrl!);
    // Until a client is ready the throttle answers from its per-replica fallback; start shared.
    await Promise.all([ready(redisA), ready(redisB)]);
    replicaA = new LoginThrottle({ ...options, redis: redisA });
    replicaB = new LoginThrottle({ ...options, redis: redisB });
  });

  afterAll(async () => {
    const keys = await redisA.keys(`${prefix}*`);
    if (keys.length > 0) await redisA.del(...keys);
    expect(await redisA.keys(`${prefix}*`)).toEqual([]);
    redisA.disconnect();
    redisB.disconnect();
  });

  it('counts account failures across replicas and locks with retry info', async () => {
    await replicaA.recordFailure('ann@example.com', '10.0.0.1');
    await replicaB.recordFailure('ann@example.com', '10.0.0.2');
    await replicaA.recordFailure('ann@example.com', '10.0.0.3');
    expect(await refusal(replicaB.assertAllowed('ann@example.com', '10.0.0.4'))).toBeUndefined();
    await replicaB.recordFailure('ann@example.com', '10.0.0.4');
    for (const replica of [replicaA, replicaB]) {
      const e = await refusal(replica.assertAllowed('ann@example.com', '10.0.0.5'));
      expect(e).toMatchObject({ kind: 'resource_exhausted', id: 'ERR_TOO_MANY_ATTEMPTS' });
      expect(e!.retryAfterMs).toBeGreaterThan(590_000);
      expect(e!.retryAfterMs).toBeLessThanOrEqual(600_000);
    }
    // Redis holds counters under our prefix, and no email in clear.
    const keys = await redisA.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.some((k) => k.includes('ann@example.com'))).toBe(false);
    expect(replicaA.storeFallbacks() + replicaB.storeFallbacks()).toBe(0);
  });

  it('a success on one replica resets the account for all', async () => {
    for (let i = 0; i < 3; i++) await replicaA.recordFailure('bob@example.com', `10.1.0.${i}`);
    await replicaB.recordSuccess('bob@example.com', '10.1.0.9');
    for (let i = 0; i < 3; i++) await replicaB.recordFailure('bob@example.com', `10.1.1.${i}`);
    expect(await refusal(replicaA.assertAllowed('bob@example.com', '10.1.2.1'))).toBeUndefined();
    await replicaA.recordFailure('bob@example.com', '10.1.2.1');
    expect((await refusal(replicaA.assertAllowed('bob@example.com', '10.1.2.2')))?.id).toBe('ERR_TOO_MANY_ATTEMPTS');
  });

  it('limits one address across different accounts and replicas', async () => {
    for (let i = 0; i < 6; i++) {
      await (i % 2 === 0 ? replicaA : replicaB).recordFailure(`spray${i}@example.com`, '198.51.100.7');
    }
    const e = await refusal(replicaB.assertAllowed('fresh@example.com', '198.51.100.7'));
    expect(e?.id).toBe('ERR_TOO_MANY_ATTEMPTS');
    expect(e!.retryAfterMs).toBeGreaterThan(0);
    expect(e!.retryAfterMs).toBeLessThanOrEqual(300_000);
    // A success does not clear the address.
    await replicaA.recordSuccess('fresh@example.com', '198.51.100.7');
    expect((await refusal(replicaA.assertAllowed('fresh@example.com', '198.51.100.7')))?.id).toBe('ERR_TOO_MANY_ATTEMPTS');
    expect(await refusal(replicaA.assertAllowed('fresh@example.com', '198.51.100.8'))).toBeUndefined();
  });
});
