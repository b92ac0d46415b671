import { describe, expect, it } from 'vitest';
import type { AccessTokens, VerifiedAccessToken } from '../token/access-token.js';
import { IntrospectionService } from './introspection-service.js';
import type { UserState, UserStateCache } from './user-state-cache.js';

function claims(sid: string, iatMs = 1_000): VerifiedAccessToken {
  return { sub: 'u-1', role: 'user', sid, amr: ['pwd'], passwordMustChange: false, jti: `j-${sid}`, iatMs, expMs: iatMs + 900_000, iss: 'i', aud: 'a', clientId: 'latch' };
}

function state(revoked: string[] = [], tokensValidAfterMs = 0): UserState {
  return { email: 'ada@example.com', role: 'user', disabled: false, passwordMustChange: false, createdAtMs: 0, totpEnabled: false, emailVerified: false, tokensValidAfterMs, revokedSessions: new Set(revoked) };
}

/** The verified-token cache hands back one claims object per token; so does this stub. */
function setup() {
  const byToken = new Map([['tok-a', claims('s-a')], ['tok-b', claims('s-b')]]);
  let current = state();
  const tokens = { verify: async (t: string) => byToken.get(t) ?? null } as unknown as AccessTokens;
  const users = { get: async () => current } as unknown as UserStateCache;
  return { svc: new IntrospectionService(tokens, users), reload: (s: UserState) => (current = s) };
}

describe('IntrospectionService and ended sessions (R8)', () => {
  it('a token whose sid is among the revoked sessions is inactive; the same user\'s other sessions are not', async () => {
    const { svc, reload } = setup();
    reload(state(['s-a']));
    expect(await svc.introspect('tok-a')).toEqual({ active: false });
    expect((await svc.introspect('tok-b')).active).toBe(true);
    await expect(svc.authenticate('tok-a')).rejects.toMatchObject({ kind: 'unauthenticated', id: 'ERR_INVALID_ACCESS_TOKEN' });
    expect((await svc.authenticate('tok-b')).sessionId).toBe('s-b');
  });

  it('a remembered answer never outlives a reload that ends its session', async () => {
    const { svc, reload } = setup();
    const first = await svc.introspect('tok-a');
    expect(first.active).toBe(true);
    expect(await svc.introspect('tok-a')).toBe(first); // same state: the same answer object
    reload(state(['s-a']));
    expect(await svc.introspect('tok-a')).toEqual({ active: false });
    const b = await svc.introspect('tok-b');
    expect(b.active).toBe(true);
    expect(await svc.introspect('tok-b')).toBe(b);
  });
});

describe('IntrospectionService from memory', () => {
  it('answers now, without a promise, when the token and its user are in memory; later when either waits', async () => {
    const byToken = new Map([['tok-a', claims('s-a')]]);
    const verify = (t: string) => byToken.get(t) ?? null;
    let waiting = false;
    const tokens = { verify: (t: string) => (waiting ? Promise.resolve(verify(t)) : verify(t)) } as unknown as AccessTokens;
    const current = state();
    const users = { get: () => current } as unknown as UserStateCache;
    const svc = new IntrospectionService(tokens, users);
    const now = svc.introspect('tok-a');
    expect(now).not.toBeInstanceOf(Promise);
    expect((now as { active: boolean }).active).toBe(true);
    expect(svc.authenticate('tok-a')).not.toBeInstanceOf(Promise);
    // An inactive token is refused at once.
    expect(() => svc.authenticate('tok-x')).toThrow(expect.objectContaining({ kind: 'unauthenticated', id: 'ERR_INVALID_ACCESS_TOKEN' }));
    waiting = true;
    const later = svc.introspect('tok-a');
    expect(later).toBeInstanceOf(Promise);
    expect(await later).toBe(now);
    await expect(svc.authenticate('tok-x')).rejects.toMatchObject({ kind: 'unauthenticated' });
  });
});
