import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LatchAuth } from './auth.js';
import { requireUser, type LatchPolicy } from './policy.js';
import { HTTP_STATUS, LatchAuthError, type LatchPrincipal } from './principal.js';

/** A request the guard let through: `req.latch` is the verified principal. */
export type AuthenticatedRequest<R extends IncomingMessage = IncomingMessage> = R & { latch: LatchPrincipal };

/**
 * For node:http: `http.createServer(withLatch(auth, requireUser, (req, res, user) => ...))`.
 * Refusals are answered with 401 / 403 / 503 and a JSON body `{ code, reason, message }`.
 */
export function withLatch<R extends IncomingMessage, S extends ServerResponse>(
  auth: LatchAuth,
  policy: LatchPolicy,
  handler: (req: AuthenticatedRequest<R>, res: S, principal: LatchPrincipal) => unknown,
): (req: R, res: S) => void {
  return (req, res) => {
    auth
      .authorize(req.headers.authorization, policy)
      .then(
        (principal) => {
          (req as AuthenticatedRequest<R>).latch = principal;
          return handler(req as AuthenticatedRequest<R>, res, principal);
        },
        (err: unknown) => sendRefusal(res, err),
      )
      .catch(() => {
        // The handler failed: a bare 500, nothing of the error leaks.
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
  };
}

/** Express-style middleware: `app.get('/me', latchMiddleware(auth, requireAdmin), (req, res) => res.json(req.latch))`. */
export function latchMiddleware(auth: LatchAuth, policy: LatchPolicy = requireUser) {
  return (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    auth.authorize(req.headers.authorization, policy).then(
      (principal) => {
        (req as AuthenticatedRequest).latch = principal;
        next();
      },
      (err: unknown) => sendRefusal(res, err),
    );
  };
}

export function sendRefusal(res: ServerResponse, err: unknown): void {
  const e = err instanceof LatchAuthError ? err : new LatchAuthError('unavailable', 'latch_unavailable', 'authentication could not be checked');
  const statusCode = HTTP_STATUS[e.code];
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (statusCode === 401) headers['www-authenticate'] = 'Bearer';
  if (statusCode === 503) headers['retry-after'] = '1';
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(statusCode, headers).end(JSON.stringify({ code: e.code, reason: e.reason, message: e.message }));
}
