import { describe, expect, it } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { LoginThrottle, type LoginAttempt, type LoginThrottleOptions } from './login-throttle.js';

const make = (o: Partial<LoginThrottleOptions> = {}) =>
  new LoginThrottle({
    keyPrefix: 'test:',
    maxFailuresPerAccountAndIp: 3,
    maxFailuresPerAccount: 5,
    accountLockSeconds: 900,
    maxFailuresPerIp: 50,
    ipWindowSeconds: 300,
    ...o,
  });

/** begin(), answering the refusal instead of throwing it. */
async function begin(t: LoginThrottle, email: string, ip: string): Promise<LoginAttempt | LatchError> {
  try {
    return await t.begin(email, ip);
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    return e as LatchError;
  }
}

const refused = (r: LoginAttempt | LatchError): r is LatchError => r instanceof LatchError;

/** One failed attempt; throws if it was refused. */
async function fail(t: LoginThrottle, email: string, ip: string) {
  const a = await begin(t, email, ip);
  if (refused(a)) throw new Error(`refused: ${a.id}`);
  return t.failed(a);
}

describe('LoginThrottle (memory backend, A1, A6)', () => {
  it('locks (account, address) after maxFailuresPerAccountAndIp failures; the owner elsewhere is not locked out', async () => {
    const t = make();
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await fail(t, 'ann@example.com', '203.0.113.9'));
    expect(outcomes.map((o) => o.pairLocked)).toEqual([false, false, true]);
    expect(outcomes.some((o) => o.accountLocked)).toBe(false);
    const e = await begin(t, 'ann@example.com', '203.0.113.9');
    expect(e).toMatchObject({ kind: 'resource_exhausted', id: 'ERR_TOO_MANY_ATTEMPTS', message: 'too many failed sign-in attempts, try again later' });
    const retry = (e as LatchError).retryAfterMs!;
    expect(retry).toBeGreaterThan(890_000);
    expect(retry).toBeLessThanOrEqual(900_000);
    // The owner, from their own address, and the attacker against another account.
    const owner = await begin(t, 'ann@example.com', '198.51.100.20');
    expect(refused(owner)).toBe(false);
    await t.succeeded(owner as LoginAttempt);
    expect(refused(await begin(t, 'bob@example.com', '203.0.113.9'))).toBe(false);
    // The owner's success does not lift the attacker's pair.
    expect(await begin(t, 'ann@example.com', '203.0.113.9')).toBeInstanceOf(LatchError);
  });

  it('locks the account for every address at the ceiling, reported once', async () => {
    const t = make();
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await fail(t, 'ann@example.com', `10.0.0.${i}`));
    expect(outcomes.map((o) => o.accountLocked)).toEqual([false, false, false, false, true]);
    for (const ip of ['10.0.0.1', '10.9.9.9']) {
      const e = await begin(t, 'ann@example.com', ip);
      expect(e).toMatchObject({ id: 'ERR_TOO_MANY_ATTEMPTS' });
      expect((e as LatchError).retryAfterMs).toBeGreaterThan(890_000);
    }
    expect(refused(await begin(t, 'bob@example.com', '10.9.9.9'))).toBe(false);
  });

  it('a success resets both account counters; the address keeps its failures but not the success', async () => {
    const t = make({ maxFailuresPerIp: 6 });
    await fail(t, 'ann@example.com', '10.0.0.1');
    await fail(t, 'ann@example.com', '10.0.0.1');
    const ok = await t.begin('ann@example.com', '10.0.0.1');
    await t.succeeded(ok);
    // Three more to the pair (it starts over), then it locks.
    await fail(t, 'ann@example.com', '10.0.0.1');
    await fail(t, 'ann@example.com', '10.0.0.1');
    expect((await fail(t, 'ann@example.com', '10.0.0.1')).pairLocked).toBe(true);
    // Five failures from 10.0.0.1 so far (the success gave its place back): one left.
    await fail(t, 'cid@example.com', '10.0.0.1');
    expect(await begin(t, 'dee@example.com', '10.0.0.1')).toMatchObject({ id: 'ERR_TOO_MANY_ATTEMPTS' });
  });

  it('limits an address across accounts within its window', async () => {
    const t = make({ maxFailuresPerIp: 4, ipWindowSeconds: 300 });
    for (let i = 0; i < 4; i++) await fail(t, `user${i}@example.com`, '192.0.2.7');
    const e = await begin(t, 'fresh@example.com', '192.0.2.7');
    expect(e).toMatchObject({ id: 'ERR_TOO_MANY_ATTEMPTS' });
    expect((e as LatchError).retryAfterMs).toBeGreaterThan(290_000);
    expect((e as LatchError).retryAfterMs).toBeLessThanOrEqual(300_000);
    expect(refused(await begin(t, 'fresh@example.com', '192.0.2.8'))).toBe(false);
  });

  it('does not lump clients without an address into one bucket, but still bounds each account', async () => {
    const t = make({ maxFailuresPerIp: 2 });
    for (let i = 0; i < 3; i++) await fail(t, `u${i}@example.com`, '');
    expect(refused(await begin(t, 'u9@example.com', ''))).toBe(false);
    for (let i = 0; i < 2; i++) await fail(t, 'u0@example.com', '');
    expect(await begin(t, 'u0@example.com', '')).toBeInstanceOf(LatchError);
  });

  it('refuses nonsense settings', () => {
    expect(() => make({ maxFailuresPerAccount: 101 })).toThrow(RangeError);
    expect(() => make({ maxFailuresPerAccount: 2, maxFailuresPerAccountAndIp: 3 })).toThrow(RangeError);
    expect(() => make({ maxFailuresPerAccount: 100 })).not.toThrow();
  });
});

describe('LoginThrottle reservations (A4)', () => {
  it('of 100 parallel attempts on one pair exactly the limit are let through, and refusals take nothing elsewhere', async () => {
    const t = make({ maxFailuresPerAccountAndIp: 10, maxFailuresPerAccount: 15, maxFailuresPerIp: 200 });
    const all = await Promise.all(Array.from({ length: 100 }, () => begin(t, 'ann@example.com', '203.0.113.9')));
    const granted = all.filter((a): a is LoginAttempt => !refused(a));
    expect(granted).toHaveLength(10);
    for (const e of all.filter(refused)) expect(e.retryAfterMs).toBeGreaterThan(0);
    const outcomes = await Promise.all(granted.map((a) => t.failed(a)));
    expect(outcomes.filter((o) => o.pairLocked)).toHaveLength(1);
    expect(outcomes.filter((o) => o.accountLocked)).toHaveLength(0);
    // The account-wide count is 10 real failures, not 100: exactly 5 more reach the ceiling.
    const more = await Promise.all(Array.from({ length: 50 }, (_, i) => begin(t, 'ann@example.com', `198.51.100.${i}`)));
    const through = more.filter((a): a is LoginAttempt => !refused(a));
    expect(through).toHaveLength(5);
    const last = await Promise.all(through.map((a) => t.failed(a)));
    expect(last.filter((o) => o.accountLocked)).toHaveLength(1);
    // And the address that was refused 90 times counted only its 10 failures.
    const ip = await Promise.all(Array.from({ length: 200 }, (_, i) => begin(t, `spray${i}@example.com`, '203.0.113.9')));
    expect(ip.filter((a) => !refused(a))).toHaveLength(190);
  });

  it('an address that is spent costs the account nothing', async () => {
    const t = make({ maxFailuresPerIp: 2 });
    await fail(t, 'x@example.com', '192.0.2.7');
    await fail(t, 'y@example.com', '192.0.2.7');
    for (let i = 0; i < 10; i++) expect(await begin(t, 'ann@example.com', '192.0.2.7')).toBeInstanceOf(LatchError);
    // The account counted none of those refusals: the ceiling (5) is still five failures away.
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await fail(t, 'ann@example.com', `10.0.1.${i}`));
    expect(outcomes.map((o) => o.accountLocked)).toEqual([false, false, false, false, true]);
  });

  it('cancel() gives every reservation back', async () => {
    const t = make({ maxFailuresPerIp: 3 });
    for (let i = 0; i < 10; i++) await t.cancel(await t.begin('ann@example.com', '10.0.0.1'));
    for (let i = 0; i < 2; i++) await fail(t, 'ann@example.com', '10.0.0.1');
    expect((await fail(t, 'ann@example.com', '10.0.0.1')).pairLocked).toBe(true);
  });

  it('an attempt refused by the account ceiling gives back its pair and address places', async () => {
    const t = make({ maxFailuresPerAccountAndIp: 3, maxFailuresPerAccount: 3, maxFailuresPerIp: 2 });
    // Three in flight from three addresses: the ceiling is full until they settle.
    const inFlight = await Promise.all(['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => t.begin('ann@example.com', ip)));
    expect(await begin(t, 'ann@example.com', '10.0.0.4')).toBeInstanceOf(LatchError);
    expect(await begin(t, 'ann@example.com', '10.0.0.4')).toBeInstanceOf(LatchError);
    // 10.0.0.4 still has both of its address places.
    await fail(t, 'bob@example.com', '10.0.0.4');
    expect(refused(await begin(t, 'cid@example.com', '10.0.0.4'))).toBe(false);
    await Promise.all(inFlight.map((a) => t.succeeded(a)));
  });
});
