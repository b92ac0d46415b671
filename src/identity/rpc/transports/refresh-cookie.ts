import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { AuthService } from '../../../gen/identity/v1/auth_pb.js';
import type { Session } from '../../../gen/identity/v1/user_pb.js';
import type { Clock } from '../../../shared/clock.js';
import { LatchError } from '../../../shared/errors.js';
import { decodedRequestKey } from '../pipeline/context-keys.js';
import { mapError } from '../pipeline/error-map.js';

/**
 * Browser refresh-cookie mode (BROWSER_REFRESH_COOKIE, docs/security.md W1-W4), HTTP port only.
 * A browser that sends `Latch-Refresh-Cookie: 1` from an allowed Origin gets its refresh token
 * as an HttpOnly, Secure, SameSite cookie scoped to the Refresh and Logout paths instead of in the
 * response body, and may leave refresh_token empty on Refresh and Logout to have the cookie read.
 * Without the header nothing changes: the cookie is never read and never set.
 */

/** The opt-in request header; not CORS-safelisted, so a cross-origin request carrying it is preflighted. */
export const REFRESH_COOKIE_HEADER = 'latch-refresh-cookie';

export type SameSite = 'Strict' | 'Lax' | 'None';

export interface RefreshCookieOptions {
  /** Cookie name (a cookie-name token). */
  name: string;
  sameSite: SameSite;
  /** Origins allowed to use the mode: the CORS allow-list. */
  allowedOrigins: readonly string[];
  clock: Clock;
}

export interface RefreshCookieMode {
  interceptor: Interceptor;
  /** Added to CORS answers (preflight and actual) for allowed origins. */
  corsHeaders: Readonly<Record<string, string>>;
}

const SERVICE = AuthService.typeName;
/** Where the browser sends the cookie back: nowhere else. */
export const refreshCookiePaths = [`/${SERVICE}/Refresh`, `/${SERVICE}/Logout`] as const;

/** Methods whose response carries a new session (and so a new refresh token). */
const ISSUING = new Set(['Login', 'CompleteMfa', 'Refresh', 'ChangePassword']);
/** Methods that take a refresh token. */
const CONSUMING = new Set(['Refresh', 'Logout']);

/** Whether the mode's interceptor can act on a call to `path` (`/package.Service/Method`). */
export function refreshCookieActsOn(path: string): boolean {
  const slash = path.lastIndexOf('/');
  const method = path.slice(slash + 1);
  return path.slice(1, slash) === SERVICE && (ISSUING.has(method) || CONSUMING.has(method));
}

/** Builds the mode from configuration; undefined when it is off (the HTTP server then does nothing extra). */
export function refreshCookieFromConfig(
  config: { BROWSER_REFRESH_COOKIE: boolean; REFRESH_COOKIE_NAME: string; REFRESH_COOKIE_SAMESITE: SameSite; CORS_ORIGINS: readonly string[] },
  clock: Clock,
): RefreshCookieMode | undefined {
  if (!config.BROWSER_REFRESH_COOKIE) return undefined;
  return refreshCookieMode({ name: config.REFRESH_COOKIE_NAME, sameSite: config.REFRESH_COOKIE_SAMESITE, allowedOrigins: config.CORS_ORIGINS, clock });
}

export function refreshCookieMode(opts: RefreshCookieOptions): RefreshCookieMode {
  const allowed = new Set(opts.allowedOrigins);
  const clear = refreshCookieHeaders(opts, '', 0);

  const interceptor: Interceptor = (next) => async (req) => {
    const method = req.method.name;
    if (req.service.typeName !== SERVICE || !(ISSUING.has(method) || CONSUMING.has(method))) return next(req);
    if (req.header.get(REFRESH_COOKIE_HEADER) === null) return next(req);
    // W2: the cookie is sent by the browser whoever asks; only a page of an allowed origin may use it.
    const origin = req.header.get('origin');
    if (origin === null || !allowed.has(origin)) throw originRefused();

    let fromCookie = false;
    if (CONSUMING.has(method)) {
      const message = (req.contextValues.get(decodedRequestKey) ?? req.message) as { refreshToken: string };
      if (message.refreshToken === '') {
        message.refreshToken = readCookie(req.header.get('cookie'), opts.name) ?? '';
        fromCookie = message.refreshToken !== '';
      }
    }

    let res;
    try {
      res = await next(req);
    } catch (err) {
      // A cookie whose token no longer works is dropped from the browser too (not on an outage).
      // Connect writes error metadata with set(), so one Set-Cookie only: the one for this path.
      if (fromCookie && err instanceof ConnectError && err.code === Code.Unauthenticated) {
        err.metadata.append('set-cookie', method === 'Refresh' ? clear[0]! : clear[1]!);
      }
      throw err;
    }

    if (method === 'Logout') {
      for (const c of clear) res.header.append('set-cookie', c);
      return res;
    }
    const m = res.message as { session?: Session; result?: { case: string | undefined; value?: unknown } };
    const session = method === 'Login' ? (m.result?.case === 'session' ? (m.result.value as Session) : undefined) : m.session;
    if (session !== undefined && session.refreshToken !== '') {
      const expiresMs = session.refreshTokenExpiresAt ? timestampMs(session.refreshTokenExpiresAt) : opts.clock.nowMs();
      const maxAge = Math.max(0, Math.floor((expiresMs - opts.clock.nowMs()) / 1000));
      for (const c of refreshCookieHeaders(opts, session.refreshToken, maxAge)) res.header.append('set-cookie', c);
      session.refreshToken = '';
    }
    return res;
  };

  return { interceptor, corsHeaders: { 'Access-Control-Allow-Credentials': 'true' } };
}

/** One Set-Cookie value per path, same value; `value` '' with maxAge 0 deletes the cookies. */
export function refreshCookieHeaders(opts: Pick<RefreshCookieOptions, 'name' | 'sameSite'>, value: string, maxAgeSeconds: number): string[] {
  return refreshCookiePaths.map((path) => `${opts.name}=${value}; Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=${opts.sameSite}`);
}

/** The value of cookie `name` in a Cookie request header, or undefined. */
export function readCookie(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

function originRefused(): ConnectError {
  return mapError(
    new LatchError('permission_denied', 'ERR_REFRESH_COOKIE_ORIGIN', 'the refresh cookie may only be used from an allowed origin'),
  ).error;
}
