import { afterEach, describe, expect, it, vi } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { SignupThrottle } from './signup-throttle.js';

const settled = async (p: Promise<unknown>) => {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return done;
};

describe('SignupThrottle refusals of a spent address', () => {
  afterEach(() => vi.useRealTimers());

  it('holds a refusal for the delay, then refuses with the time left in the window', async () => {
    vi.useFakeTimers();
    const t = new SignupThrottle({ keyPrefix: 't:', maxPerIp: 2, windowSeconds: 60, refusalDelayMs: 1000 });
    await t.reserve('192.0.2.1');
    await t.reserve('192.0.2.1');
    // The refusal that finds the address spent is answered at once and remembers it.
    await expect(t.reserve('192.0.2.1')).rejects.toMatchObject({ id: 'ERR_TOO_MANY_SIGNUPS' });
    const held = t.reserve('192.0.2.1');
    held.catch(() => {});
    expect(await settled(held)).toBe(false);
    expect(t.heldRefusals()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(held)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const e = await held.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LatchError);
    expect((e as LatchError).id).toBe('ERR_TOO_MANY_SIGNUPS');
    expect((e as LatchError).retryAfterMs).toBeGreaterThan(50_000);
    expect(t.heldRefusals()).toBe(0);
    // Another address is neither held nor refused.
    await expect(t.reserve('192.0.2.2')).resolves.toEqual({ ip: '192.0.2.2' });
  });

  it('answers at once beyond maxHeldRefusals, and with a zero delay', async () => {
    vi.useFakeTimers();
    const t = new SignupThrottle({ keyPrefix: 't:', maxPerIp: 1, windowSeconds: 60, refusalDelayMs: 1000, maxHeldRefusals: 1 });
    await t.reserve('192.0.2.1');
    await expect(t.reserve('192.0.2.1')).rejects.toMatchObject({ id: 'ERR_TOO_MANY_SIGNUPS' });
    const first = t.reserve('192.0.2.1');
    first.catch(() => {});
    const second = t.reserve('192.0.2.1');
    second.catch(() => {});
    expect(await settled(first)).toBe(false);
    expect(await settled(second)).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await settled(first)).toBe(true);

    const now = new SignupThrottle({ keyPrefix: 't:', maxPerIp: 1, windowSeconds: 60, refusalDelayMs: 0 });
    await now.reserve('192.0.2.1');
    await expect(now.reserve('192.0.2.1')).rejects.toMatchObject({ id: 'ERR_TOO_MANY_SIGNUPS' });
    const immediate = now.reserve('192.0.2.1');
    immediate.catch(() => {});
    expect(await settled(immediate)).toBe(true);
  });

  it('never holds past the end of the window', async () => {
    vi.useFakeTimers();
    const t = new SignupThrottle({ keyPrefix: 't:', maxPerIp: 1, windowSeconds: 1, refusalDelayMs: 5000 });
    await t.reserve('192.0.2.1');
    await expect(t.reserve('192.0.2.1')).rejects.toMatchObject({ id: 'ERR_TOO_MANY_SIGNUPS' });
    await vi.advanceTimersByTimeAsync(600);
    const held = t.reserve('192.0.2.1');
    held.catch(() => {});
    expect(await settled(held)).toBe(false);
    await vi.advanceTimersByTimeAsync(400);
    expect(await settled(held)).toBe(true);
    // The window has ended: the address may sign up again.
    await vi.advanceTimersByTimeAsync(10);
    await expect(t.reserve('192.0.2.1')).resolves.toEqual({ ip: '192.0.2.1' });
  });
});
