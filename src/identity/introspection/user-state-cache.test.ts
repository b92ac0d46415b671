import { describe, expect, it } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import type { TokenStateRow, UserStore } from '../account/user-store.js';
import { MAX_LOOKUP_BATCH, UserStateCache } from './user-state-cache.js';

const row = (email: string): TokenStateRow => ({
  email,
  role: 'user',
  disabled: false,
  passwordMustChange: false,
  tokensValidAfter: new Date(0),
  createdAt: new Date(0),
  totpEnabled: false,
  emailVerified: false,
  revokedIds: null,
  revokedCount: 0,
  revokedOldest: null,
});

const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

/** A store that answers every known id and counts its queries. */
function countingStore(opts: { fail?: boolean } = {}) {
  const calls: string[][] = [];
  const store = {
    async readTokenStates(ids: readonly string[]) {
      calls.push([...ids]);
      if (opts.fail) throw new Error('connection terminated');
      return new Map(ids.filter((x) => x !== id(999)).map((x) => [x, row(`${x}@example.test`)]));
    },
  } as unknown as UserStore;
  return { store, calls };
}

const clock = { nowMs: () => Date.now() };
const logger = createLogger('silent');

describe('UserStateCache lookups', () => {
  it('looks up the users missed at the same moment in one query, each user once', async () => {
    const { store, calls } = countingStore();
    const cache = new UserStateCache(store, { isLive: () => true }, 60_000, clock, logger);
    const wanted = [...Array.from({ length: 40 }, (_, i) => id(i)), id(3), id(3), id(999)];
    const states = await Promise.all(wanted.map((u) => cache.get(u)));
    expect(calls).toHaveLength(1);
    expect(new Set(calls[0])).toEqual(new Set([...Array.from({ length: 40 }, (_, i) => id(i)), id(999)]));
    expect(calls[0]).toHaveLength(41);
    expect(states[5]?.email).toBe(`${id(5)}@example.test`);
    expect(states[40]?.email).toBe(`${id(3)}@example.test`);
    // An unknown user is null, not an error.
    expect(states.at(-1)).toBeNull();
    // Now cached: no further query.
    await cache.get(id(7));
    expect(calls).toHaveLength(1);
  });

  it(`splits a larger gathering into queries of at most ${MAX_LOOKUP_BATCH} users`, async () => {
    const { store, calls } = countingStore();
    const cache = new UserStateCache(store, { isLive: () => true }, 60_000, clock, logger);
    await Promise.all(Array.from({ length: MAX_LOOKUP_BATCH * 2 + 5 }, (_, i) => cache.get(id(i))));
    expect(calls.map((c) => c.length)).toEqual([MAX_LOOKUP_BATCH, MAX_LOOKUP_BATCH, 5]);
  });

  it('a failed query is UNAVAILABLE for every lookup in it, and nothing is cached', async () => {
    const failing = countingStore({ fail: true });
    const cache = new UserStateCache(failing.store, { isLive: () => true }, 60_000, clock, logger);
    const results = await Promise.allSettled([cache.get(id(1)), cache.get(id(2))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as LatchError;
      expect(e).toBeInstanceOf(LatchError);
      expect(e.id).toBe('ERR_BACKEND_UNAVAILABLE');
    }
    expect(failing.calls).toHaveLength(1);
    await Promise.allSettled([cache.get(id(1))]);
    expect(failing.calls).toHaveLength(2);
  });
});

describe('UserStateCache rereads', () => {
  /** A store whose answer for id(1) the test edits between rereads. */
  function editableStore() {
    let current = row('ada@example.test');
    const store = {
      async readTokenStates(ids: readonly string[]) {
        return new Map(ids.map((x) => [x, { ...current, revokedIds: current.revokedIds ? [...current.revokedIds] : null }]));
      },
    } as unknown as UserStore;
    return { store, edit: (change: Partial<TokenStateRow>) => (current = { ...current, ...change }) };
  }

  function cacheAt(store: UserStore) {
    let now = 1_000_000;
    const cache = new UserStateCache(store, { isLive: () => true }, 5_000, { nowMs: () => now }, logger);
    return { cache, expire: () => (now += 5_000) };
  }

  it('keeps the same state object when a reread after the TTL finds nothing changed', async () => {
    const { store } = editableStore();
    const { cache, expire } = cacheAt(store);
    const first = await cache.get(id(1));
    expire();
    expect(await cache.get(id(1))).toBe(first);
  });

  it.each<[string, Partial<TokenStateRow>]>([
    ['a revoked session', { revokedIds: ['5e55f0b2-0000-4000-8000-000000000001'], revokedCount: 1, revokedOldest: new Date(5) }],
    ['a disabled account', { disabled: true }],
    ['another role', { role: 'admin' }],
    ['tokens valid only after a later instant', { tokensValidAfter: new Date(10) }],
    ['a verified address', { emailVerified: true }],
    ['TOTP turned on', { totpEnabled: true }],
    ['a new address', { email: 'ada@example.org' }],
    ['a password that must change', { passwordMustChange: true }],
  ])('hands out a new state object when a reread finds %s', async (_what, change) => {
    const { store, edit } = editableStore();
    const { cache, expire } = cacheAt(store);
    const first = await cache.get(id(1));
    edit(change);
    expire();
    const second = await cache.get(id(1));
    expect(second).not.toBe(first);
    expect(second).not.toEqual(first);
  });

  it('two different revoked sessions are a change even when the count is the same', async () => {
    const { store, edit } = editableStore();
    edit({ revokedIds: ['5e55f0b2-0000-4000-8000-000000000001'], revokedCount: 1, revokedOldest: new Date(5) });
    const { cache, expire } = cacheAt(store);
    await cache.get(id(1));
    edit({ revokedIds: ['5e55f0b2-0000-4000-8000-000000000002'], revokedCount: 1, revokedOldest: new Date(5) });
    expire();
    expect((await cache.get(id(1)))?.revokedSessions.has('5e55f0b2-0000-4000-8000-000000000002')).toBe(true);
  });
});
