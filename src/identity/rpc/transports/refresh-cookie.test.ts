import { describe, expect, it } from 'vitest';
import { readCookie, refreshCookieHeaders, refreshCookiePaths } from './refresh-cookie.js';

describe('refresh cookie helpers', () => {
  it('writes one HttpOnly Secure cookie per path with the same value', () => {
    const set = refreshCookieHeaders({ name: 'latch_refresh', sameSite: 'Lax' }, 'abc', 60);
    expect(refreshCookiePaths).toEqual(['/identity.v1.AuthService/Refresh', '/identity.v1.AuthService/Logout']);
    expect(set).toEqual([
      'latch_refresh=abc; Path=/identity.v1.AuthService/Refresh; Max-Age=60; HttpOnly; Secure; SameSite=Lax',
      'latch_refresh=abc; Path=/identity.v1.AuthService/Logout; Max-Age=60; HttpOnly; Secure; SameSite=Lax',
    ]);
  });

  it('reads the named cookie only, ignoring empty values and look-alike names', () => {
    expect(readCookie(null, 'latch_refresh')).toBeUndefined();
    expect(readCookie('a=1; latch_refresh=tok; b=2', 'latch_refresh')).toBe('tok');
    expect(readCookie('xlatch_refresh=no; latch_refresh_2=no', 'latch_refresh')).toBeUndefined();
    expect(readCookie('latch_refresh=', 'latch_refresh')).toBeUndefined();
    expect(readCookie('junk; latch_refresh=a=b', 'latch_refresh')).toBe('a=b');
  });
});
