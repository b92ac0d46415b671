import { describe, expect, it } from 'vitest';
import type { LatchPrincipal } from './principal.js';
import { TokenCache } from './token-cache.js';

const principal = (userId: string, sessionId: string, expiresAtMs = 1e15): LatchPrincipal => ({
  userId,
  email: `${userId}@example.test`,
  role: 'user',
  scope: '',
  amr: ['pwd'],
  sessionId,
  clientId: 'latch',
  emailVerified: false,
  passwordMustChange: false,
  jti: 'j',
  issuedAtMs: 0,
  expiresAtMs,
});

function counting(answers: Record<string, LatchPrincipal | null>) {
  const calls: string[] = [];
  return { calls, load: async (t: string) => (calls.push(t), answers[t] ?? null) };
}

describe('TokenCache', () => {
  it('answers a repeated token from memory until the TTL passes', async () => {
    let now = 1000;
    const c = new TokenCache({ ttlMs: 100, now: () => now });
    const l = counting({ a: principal('u1', 's1') });
    await c.get('a', l.load);
    await c.get('a', l.load);
    expect(l.calls).toEqual(['a']);
    now += 100;
    await c.get('a', l.load);
    expect(l.calls).toEqual(['a', 'a']);
  });

  it('never keeps an answer past the token exp', async () => {
    let now = 1000;
    const c = new TokenCache({ ttlMs: 60_000, now: () => now });
    const l = counting({ a: principal('u1', 's1', 1500) });
    await c.get('a', l.load);
    now = 1500;
    await c.get('a', l.load);
    expect(l.calls).toEqual(['a', 'a']);
  });

  it('coalesces concurrent lookups of one token into one call', async () => {
    const c = new TokenCache();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const load = async () => {
      calls++;
      await gate;
      return principal('u1', 's1');
    };
    const all = Promise.all(Array.from({ length: 20 }, () => c.get('a', load)));
    release();
    expect((await all).every((p) => p?.userId === 'u1')).toBe(true);
    expect(calls).toBe(1);
  });

  it('shares a failure with every waiter and remembers nothing', async () => {
    const c = new TokenCache();
    let calls = 0;
    const load = async () => {
      calls++;
      throw new Error('down');
    };
    const results = await Promise.allSettled([c.get('a', load), c.get('a', load)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    expect(c.size).toBe(0);
  });

  it('drops every entry of a user on a user-wide revocation, one session on a per-session one', async () => {
    const c = new TokenCache();
    const l = counting({ a: principal('u1', 's1'), b: principal('u1', 's2'), c: principal('u2', 's3') });
    for (const t of ['a', 'b', 'c']) await c.get(t, l.load);
    c.revoke('u1', 's1');
    for (const t of ['a', 'b', 'c']) await c.get(t, l.load);
    expect(l.calls).toEqual(['a', 'b', 'c', 'a']);
    c.revoke('u1');
    for (const t of ['a', 'b', 'c']) await c.get(t, l.load);
    expect(l.calls).toEqual(['a', 'b', 'c', 'a', 'a', 'b']);
  });

  it('does not remember an answer that was in flight when a revocation arrived', async () => {
    const c = new TokenCache();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const load = async () => {
      calls++;
      await gate;
      return principal('u1', 's1');
    };
    const first = c.get('a', load);
    c.revoke('u1');
    release();
    await first;
    await c.get('a', load);
    expect(calls).toBe(2);
  });

  it('serves nothing from memory while untrusted (revocation feed down)', async () => {
    const c = new TokenCache();
    const l = counting({ a: principal('u1', 's1') });
    await c.get('a', l.load);
    c.setTrusted(false);
    await c.get('a', l.load);
    await c.get('a', l.load);
    c.setTrusted(true);
    await c.get('a', l.load);
    await c.get('a', l.load);
    expect(l.calls.length).toBe(4);
  });

  it('keeps at most maxEntries, and 0 disables it', async () => {
    const c = new TokenCache({ maxEntries: 2 });
    const l = counting({ a: principal('u1', 's1'), b: principal('u1', 's2'), c: principal('u1', 's3') });
    for (const t of ['a', 'b', 'c']) await c.get(t, l.load);
    expect(c.size).toBe(2);
    const off = new TokenCache({ maxEntries: 0 });
    await off.get('a', l.load);
    expect(off.size).toBe(0);
  });
});
