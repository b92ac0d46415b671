import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestIdentity, TEST_PASSWORD, uniqueEmail, type TestIdentity } from '../helpers/identity.js';

/**
 * Browser refresh-cookie mode (docs/security.md B1-B4) over real HTTP: Connect JSON with node's
 * fetch, which sends whatever Origin and Cookie headers a test gives it, as an attacker's client could.
 */

const APP = 'https://app.example.test';
const OTHER = 'https://evil.example.test';
const AUTH = '/identity.v1.AuthService';

interface Call {
  status: number;
  body: Record<string, unknown>;
  setCookies: string[];
  headers: Headers;
}

async function call(t: TestIdentity, method: string, body: object, headers: Record<string, string> = {}): Promise<Call> {
  const res = await fetch(`${t.httpUrl}${AUTH}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, setCookies: res.headers.getSetCookie(), headers: res.headers };
}

const browser = (origin = APP) => ({ origin, 'latch-refresh-cookie': '1' });

/** The value of the latch_refresh cookie the responses set (they all carry the same value). */
function cookieValue(setCookies: string[]): string {
  const values = new Set(setCookies.map((c) => /^latch_refresh=([^;]*)/.exec(c)?.[1]));
  expect(values.size).toBe(1);
  return [...values][0]!;
}

async function signedUp(t: TestIdentity): Promise<{ email: string }> {
  const email = uniqueEmail('cookie');
  await t.connect.auth.register({ email, password: TEST_PASSWORD });
  return { email };
}

describe('browser refresh cookie (BROWSER_REFRESH_COOKIE=true)', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ env: { BROWSER_REFRESH_COOKIE: 'true', CORS_ORIGINS: APP } });
  });
  afterAll(() => t?.stop());

  async function login(): Promise<{ cookie: string; res: Call }> {
    const { email } = await signedUp(t);
    const res = await call(t, 'Login', { email, password: TEST_PASSWORD }, browser());
    expect(res.status).toBe(200);
    return { cookie: cookieValue(res.setCookies), res };
  }

  it('moves the refresh token from the login body into HttpOnly Secure SameSite cookies scoped to Refresh and Logout', async () => {
    const { cookie, res } = await login();
    const session = res.body.session as Record<string, unknown>;
    expect(session.accessToken).toEqual(expect.any(String));
    expect(session.refreshToken ?? '').toBe('');
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.setCookies).toHaveLength(2);
    const paths = res.setCookies.map((c) => /Path=([^;]+)/.exec(c)?.[1]).sort();
    expect(paths).toEqual([`${AUTH}/Logout`, `${AUTH}/Refresh`]);
    for (const c of res.setCookies) {
      expect(c).toMatch(/; HttpOnly(;|$)/);
      expect(c).toMatch(/; Secure(;|$)/);
      expect(c).toMatch(/; SameSite=Strict(;|$)/);
      const maxAge = Number(/Max-Age=(\d+)/.exec(c)?.[1]);
      // REFRESH_TOKEN_IDLE_TTL_SECONDS (14 days) bounds the first expiry.
      expect(maxAge).toBeGreaterThan(13 * 86400);
      expect(maxAge).toBeLessThanOrEqual(14 * 86400);
    }
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('refreshes from the cookie with an empty body token, and rotates it', async () => {
    const { cookie } = await login();
    const r1 = await call(t, 'Refresh', {}, { ...browser(), cookie: `latch_refresh=${cookie}` });
    expect(r1.status).toBe(200);
    expect((r1.body.session as Record<string, unknown>).refreshToken ?? '').toBe('');
    const rotated = cookieValue(r1.setCookies);
    expect(rotated).not.toBe(cookie);
    const r2 = await call(t, 'Refresh', {}, { ...browser(), cookie: `other=1; latch_refresh=${rotated}` });
    expect(r2.status).toBe(200);
    expect(cookieValue(r2.setCookies)).not.toBe(rotated);
  });

  it('refuses to read the cookie from a disallowed Origin or with no Origin (CSRF), and leaves the session usable', async () => {
    const { cookie } = await login();
    for (const headers of [browser(OTHER), { 'latch-refresh-cookie': '1' }]) {
      const res = await call(t, 'Refresh', {}, { ...headers, cookie: `latch_refresh=${cookie}` });
      expect(res.status).toBe(403);
      expect(res.headers.get('latch-error-id')).toBe('ERR_REFRESH_COOKIE_ORIGIN');
      expect(res.setCookies).toEqual([]);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
    const res = await call(t, 'Logout', {}, { ...browser(OTHER), cookie: `latch_refresh=${cookie}` });
    expect(res.status).toBe(403);
    // Nothing was consumed: the real app can still refresh.
    expect((await call(t, 'Refresh', {}, { ...browser(), cookie: `latch_refresh=${cookie}` })).status).toBe(200);
  });

  it('never reads the cookie without the opt-in header (a form post or simple request cannot set it)', async () => {
    const { cookie } = await login();
    const res = await call(t, 'Refresh', {}, { origin: APP, cookie: `latch_refresh=${cookie}` });
    expect(res.status).toBe(400);
    expect(res.headers.get('latch-error-id')).toBe('ERR_INVALID_ARGUMENT');
    expect(res.setCookies).toEqual([]);
    expect((await call(t, 'Refresh', {}, { ...browser(), cookie: `latch_refresh=${cookie}` })).status).toBe(200);
  });

  it('logs out from the cookie and clears both cookies; the old token is then dead', async () => {
    const { cookie } = await login();
    const res = await call(t, 'Logout', {}, { ...browser(), cookie: `latch_refresh=${cookie}` });
    expect(res.status).toBe(200);
    expect(res.setCookies).toHaveLength(2);
    for (const c of res.setCookies) expect(c).toMatch(/^latch_refresh=; .*Max-Age=0/);
    const again = await call(t, 'Refresh', {}, { ...browser(), cookie: `latch_refresh=${cookie}` });
    expect(again.status).toBe(401);
    expect(again.headers.get('latch-error-id')).toBe('ERR_INVALID_REFRESH_TOKEN');
    // A dead cookie is cleared from the browser as well (on the path it is sent to).
    expect(again.setCookies).toEqual([expect.stringMatching(new RegExp(`^latch_refresh=; Path=${AUTH}/Refresh; Max-Age=0`))]);
  });

  it('moves the new session of ChangePassword into the cookie too', async () => {
    const { res } = await login();
    const access = (res.body.session as Record<string, unknown>).accessToken as string;
    const changed = await call(
      t,
      'ChangePassword',
      { currentPassword: TEST_PASSWORD, newPassword: 'amber-lantern-slowly-5821' },
      { ...browser(), authorization: `Bearer ${access}` },
    );
    expect(changed.status).toBe(200);
    expect((changed.body.session as Record<string, unknown>).refreshToken ?? '').toBe('');
    const cookie = cookieValue(changed.setCookies);
    expect((await call(t, 'Refresh', {}, { ...browser(), cookie: `latch_refresh=${cookie}` })).status).toBe(200);
  });

  it('changes nothing for clients that do not opt in: the token stays in the body, no Set-Cookie', async () => {
    const { email } = await signedUp(t);
    const res = await call(t, 'Login', { email, password: TEST_PASSWORD }, { origin: APP });
    expect(res.status).toBe(200);
    expect((res.body.session as Record<string, unknown>).refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.setCookies).toEqual([]);
  });

  it('leaves the gRPC port alone', async () => {
    const { email } = await signedUp(t);
    const res = await t.grpc.auth.login({ email, password: TEST_PASSWORD }, { headers: browser() });
    expect(res.result.case).toBe('session');
    expect(res.result.case === 'session' && res.result.value.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('answers preflights with credentials and the opt-in header for allowed origins only', async () => {
    const preflight = (origin: string) =>
      fetch(`${t.httpUrl}${AUTH}/Refresh`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, latch-refresh-cookie' },
      });
    const ok = await preflight(APP);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('latch-refresh-cookie');
    const refused = await preflight(OTHER);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

describe('browser refresh cookie off (the default)', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ env: { CORS_ORIGINS: APP } });
  });
  afterAll(() => t?.stop());

  it('never sets a cookie nor allows credentials, even when asked', async () => {
    expect(t.config.BROWSER_REFRESH_COOKIE).toBe(false);
    const { email } = await signedUp(t);
    const login = await call(t, 'Login', { email, password: TEST_PASSWORD }, browser());
    expect(login.status).toBe(200);
    expect(login.setCookies).toEqual([]);
    expect(login.headers.get('access-control-allow-credentials')).toBeNull();
    const token = (login.body.session as Record<string, unknown>).refreshToken as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const refresh = await call(t, 'Refresh', {}, { ...browser(), cookie: `latch_refresh=${token}` });
    expect(refresh.status).toBe(400);
    expect(refresh.setCookies).toEqual([]);
    const body = await call(t, 'Refresh', { refreshToken: token }, browser());
    expect(body.status).toBe(200);
    expect(body.setCookies).toEqual([]);
  });
});
