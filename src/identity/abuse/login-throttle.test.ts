import { describe, expect, it } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

const make = (o: Partial<LoginThrottleOptions> = {}) =>
  new LoginThrottle({
    keyPrefix: 'test:',
    maxFailuresPerAccount: 3,
    accountLockSeconds: 900,
    maxFailuresPerIp: 5,
    ipWindowSeconds: 900,
    ...o,
  });

async function refusal(p: Promise<void>): Promise<LatchError | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    return e as LatchError;
  }
}

describe('LoginThrottle (memory backend, A1)', () => {
  it('locks an account after maxFailuresPerAccount consecutive failures', async () => {
    const t = make();
    for (let i = 0; i < 3; i++) {
      expect(await refusal(t.assertAllowed('ann@example.com', `10.0.0.${i}`))).toBeUndefined();
      await t.recordFailure('ann@example.com', `10.0.0.${i}`);
    }
    const e = await refusal(t.assertAllowed('ann@example.com', '10.0.0.99'));
    expect(e).toMatchObject({
      kind: 'resource_exhausted',
      id: 'ERR_TOO_MANY_ATTEMPTS',
      message: 'too many failed sign-in attempts, try again later',
    });
    expect(e!.retryAfterMs).toBeGreaterThan(890_000);
    expect(e!.retryAfterMs).toBeLessThanOrEqual(900_000);
    expect(await refusal(t.assertAllowed('bob@example.com', '10.0.0.99'))).toBeUndefined();
  });

  it('a success resets the account count but not the address count', async () => {
    const t = make();
    await t.recordFailure('ann@example.com', '10.0.0.1');
    await t.recordFailure('ann@example.com', '10.0.0.1');
    await t.recordSuccess('ann@example.com', '10.0.0.1');
    await t.recordFailure('ann@example.com', '10.0.0.1');
    await t.recordFailure('ann@example.com', '10.0.0.1');
    expect(await refusal(t.assertAllowed('ann@example.com', '10.0.0.2'))).toBeUndefined();
    // Four failures from 10.0.0.1 so far; the fifth exhausts it even for another account.
    await t.recordFailure('cid@example.com', '10.0.0.1');
    expect((await refusal(t.assertAllowed('dee@example.com', '10.0.0.1')))?.id).toBe('ERR_TOO_MANY_ATTEMPTS');
  });

  it('limits an address across different accounts, within its window', async () => {
    const t = make({ maxFailuresPerIp: 4, ipWindowSeconds: 300 });
    for (let i = 0; i < 4; i++) await t.recordFailure(`user${i}@example.com`, '192.0.2.7');
    const e = await refusal(t.assertAllowed('fresh@example.com', '192.0.2.7'));
    expect(e?.id).toBe('ERR_TOO_MANY_ATTEMPTS');
    expect(e!.retryAfterMs).toBeGreaterThan(290_000);
    expect(e!.retryAfterMs).toBeLessThanOrEqual(300_000);
    expect(await refusal(t.assertAllowed('fresh@example.com', '192.0.2.8'))).toBeUndefined();
  });

  it('counts unknown emails exactly like known ones', async () => {
    // The throttle never sees whether the account exists: same key, same answer.
    const t = make();
    for (let i = 0; i < 3; i++) await t.recordFailure('nobody-here@example.com', '10.1.1.1');
    expect((await refusal(t.assertAllowed('nobody-here@example.com', '10.1.1.2')))?.id).toBe('ERR_TOO_MANY_ATTEMPTS');
  });

  it('does not lump clients without an address into one bucket', async () => {
    const t = make({ maxFailuresPerIp: 2 });
    for (let i = 0; i < 3; i++) await t.recordFailure(`u${i}@example.com`, '');
    expect(await refusal(t.assertAllowed('u9@example.com', ''))).toBeUndefined();
  });

  it('refuses more than 100 failures per account as a setting', () => {
    expect(() => make({ maxFailuresPerAccount: 101 })).toThrow(RangeError);
    expect(() => make({ maxFailuresPerAccount: 100 })).not.toThrow();
  });
});
