import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithRedis, services } from '../../../test/helpers/services.js';
import { LatchError } from '../../shared/errors.js';
import { LoginThrottle, type LoginAttempt, type LoginThrottleOptions } from './login-throttle.js';

async function begin(t: LoginThrottle, email: string, ip: string): Promise<LoginAttempt | LatchError> {
  try {
    return await t.begin(email, ip);
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    return e as LatchError;
  }
}

const refused = (r: LoginAttempt | LatchError): r is LatchError => r instanceof LatchError;

async function fail(t: LoginThrottle, email: string, ip: string) {
  const a = await begin(t, email, ip);
  if (refused(a)) throw new Error(`refused: ${a.id}`);
  return t.failed(a);
}

const ready = (r: Redis) =>
  r.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => r.once('ready', () => resolve()));

describeWithRedis('LoginThrottle on Redis (A1, shared by replicas)', () => {
  const prefix = `latch-test-${randomUUID()}:`;
  let redisA: Redis;
  let redisB: Redis;
  const options: Omit<LoginThrottleOptions, 'redis'> = {
    keyPrefix: prefix,
    maxFailuresPerAccountAndIp: 4,
    maxFailuresPerAccount: 6,
    accountLockSeconds: 600,
    maxFailuresPerIp: 8,
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

  it('counts (account, address) failures across replicas and locks the pair with retry info', async () => {
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await fail(i % 2 === 0 ? replicaA : replicaB, 'ann@example.com', '10.0.0.1'));
    expect(outcomes.map((o) => o.pairLocked)).toEqual([false, false, false, true]);
    for (const replica of [replicaA, replicaB]) {
      const e = await begin(replica, 'ann@example.com', '10.0.0.1');
      expect(e).toMatchObject({ kind: 'resource_exhausted', id: 'ERR_TOO_MANY_ATTEMPTS' });
      expect((e as LatchError).retryAfterMs).toBeGreaterThan(590_000);
      expect((e as LatchError).retryAfterMs).toBeLessThanOrEqual(600_000);
    }
    // The owner, elsewhere, is not locked out.
    const owner = await begin(replicaB, 'ann@example.com', '10.0.0.2');
    expect(refused(owner)).toBe(false);
    await replicaB.succeeded(owner as LoginAttempt);
    // Redis holds counters under our prefix, and no email in clear.
    const keys = await redisA.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.some((k) => k.includes('ann@example.com'))).toBe(false);
    expect(replicaA.storeFallbacks() + replicaB.storeFallbacks()).toBe(0);
  });

  it('locks the account at the ceiling over all addresses, on every replica', async () => {
    const outcomes = [];
    for (let i = 0; i < 6; i++) outcomes.push(await fail(i % 2 === 0 ? replicaA : replicaB, 'eve@example.com', `10.2.0.${i}`));
    expect(outcomes.map((o) => o.accountLocked)).toEqual([false, false, false, false, false, true]);
    for (const replica of [replicaA, replicaB]) expect(await begin(replica, 'eve@example.com', '10.2.9.9')).toMatchObject({ id: 'ERR_TOO_MANY_ATTEMPTS' });
  });

  it('a success on one replica resets the account for all', async () => {
    for (let i = 0; i < 3; i++) await fail(replicaA, 'bob@example.com', '10.1.0.1');
    await replicaB.succeeded(await replicaB.begin('bob@example.com', '10.1.0.1'));
    for (let i = 0; i < 3; i++) await fail(replicaB, 'bob@example.com', '10.1.0.1');
    expect((await fail(replicaA, 'bob@example.com', '10.1.0.1')).pairLocked).toBe(true);
  });

  it('of 100 parallel attempts over two replicas, exactly the limit get through', async () => {
    const all = await Promise.all(
      Array.from({ length: 100 }, (_, i) => begin(i % 2 === 0 ? replicaA : replicaB, 'cid@example.com', '10.3.0.1')),
    );
    const granted = all.filter((a): a is LoginAttempt => !refused(a));
    expect(granted).toHaveLength(4);
    const outcomes = await Promise.all(granted.map((a) => replicaA.failed(a)));
    expect(outcomes.filter((o) => o.pairLocked)).toHaveLength(1);
    // The 96 refusals left the account-wide count at 4: two more addresses reach the ceiling of 6.
    expect((await fail(replicaB, 'cid@example.com', '10.3.0.2')).accountLocked).toBe(false);
    expect((await fail(replicaA, 'cid@example.com', '10.3.0.3')).accountLocked).toBe(true);
  });

  it('limits one address across different accounts and replicas', async () => {
    for (let i = 0; i < 8; i++) await fail(i % 2 === 0 ? replicaA : replicaB, `spray${i}@example.com`, '198.51.100.7');
    const e = await begin(replicaB, 'fresh@example.com', '198.51.100.7');
    expect(e).toMatchObject({ id: 'ERR_TOO_MANY_ATTEMPTS' });
    expect((e as LatchError).retryAfterMs).toBeGreaterThan(0);
    expect((e as LatchError).retryAfterMs).toBeLessThanOrEqual(300_000);
    expect(refused(await begin(replicaA, 'fresh@example.com', '198.51.100.8'))).toBe(false);
  });
});
