import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatchAuth, bearerToken } from './auth.js';
import { withLatch } from './http.js';
import { allOf, enforce, requireAdmin, requireMfa, requireUser, requireVerifiedEmail, type LatchPolicy } from './policy.js';
import { LatchAuthError, type LatchPrincipal } from './principal.js';

const base: LatchPrincipal = {
  userId: 'u1',
  email: 'u1@example.test',
  role: 'user',
  scope: '',
  amr: ['pwd'],
  sessionId: 's1',
  clientId: 'latch',
  emailVerified: false,
  passwordMustChange: false,
  jti: 'j',
  issuedAtMs: 0,
  expiresAtMs: 1e15,
};

const reasonOf = (policy: LatchPolicy, p: Partial<LatchPrincipal>) => {
  try {
    enforce(policy, { ...base, ...p });
    return 'ok';
  } catch (e) {
    return (e as LatchAuthError).reason;
  }
};

describe('policies', () => {
  it('requireUser lets any active user through, except one whose password must change', () => {
    expect(reasonOf(requireUser, {})).toBe('ok');
    expect(reasonOf(requireUser, { passwordMustChange: true })).toBe('password_must_change');
    expect(reasonOf({ allowPasswordMustChange: true }, { passwordMustChange: true })).toBe('ok');
  });

  it('requireAdmin wants the admin role', () => {
    expect(reasonOf(requireAdmin, {})).toBe('wrong_role');
    expect(reasonOf(requireAdmin, { role: 'admin' })).toBe('ok');
    expect(reasonOf(requireAdmin, { role: 'admin', passwordMustChange: true })).toBe('password_must_change');
  });

  it('requireMfa wants otp in amr', () => {
    expect(reasonOf(requireMfa, {})).toBe('second_factor_required');
    expect(reasonOf(requireMfa, { amr: ['pwd', 'otp'] })).toBe('ok');
  });

  it('requireVerifiedEmail wants email_verified', () => {
    expect(reasonOf(requireVerifiedEmail, {})).toBe('email_not_verified');
    expect(reasonOf(requireVerifiedEmail, { emailVerified: true })).toBe('ok');
  });

  it('allOf demands everything of each', () => {
    const p = allOf(requireAdmin, requireMfa);
    expect(reasonOf(p, { role: 'admin' })).toBe('second_factor_required');
    expect(reasonOf(p, { amr: ['otp'] })).toBe('wrong_role');
    expect(reasonOf(p, { role: 'admin', amr: ['otp'] })).toBe('ok');
  });

  it('bearerToken reads only a Bearer credential', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBe('');
    expect(bearerToken('Bearer a b')).toBe('');
    expect(bearerToken(undefined)).toBe('');
  });
});

describe('withLatch (node:http) against a stub introspection', () => {
  let server: Server;
  let url: string;
  const answers: Record<string, LatchPrincipal | null | 'down'> = {
    ok: base,
    verified: { ...base, emailVerified: true },
    dead: null,
    down: 'down',
  };
  beforeAll(async () => {
    const auth = await LatchAuth.create({
      introspection: {
        introspect: async (t) => {
          const a = answers[t];
          if (a === 'down') throw new LatchAuthError('unavailable', 'latch_unavailable', 'Latch could not be asked');
          return a ?? null;
        },
      },
    });
    server = createServer(
      withLatch(auth, requireVerifiedEmail, (_req, res, user) => {
        res.end(JSON.stringify({ userId: user.userId }));
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const call = async (token?: string) => {
    const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };

  it('lets a verified user through with the principal', async () => {
    expect(await call('verified')).toEqual({ status: 200, body: { userId: 'u1' } });
  });

  it('answers 401 without a token or for an inactive one, 403 for an unverified email, 503 when Latch is down', async () => {
    expect((await call()).status).toBe(401);
    expect((await call('dead')).body.reason).toBe('inactive_token');
    expect(await call('ok')).toMatchObject({ status: 403, body: { reason: 'email_not_verified' } });
    expect(await call('down')).toMatchObject({ status: 503, body: { code: 'unavailable' } });
  });
});
