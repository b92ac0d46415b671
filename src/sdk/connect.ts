import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import type { DescMethod } from '@bufbuild/protobuf';
import type { LatchAuth } from './auth.js';
import { requireUser, type LatchPolicy } from './policy.js';
import { LatchAuthError, type LatchPrincipal } from './principal.js';

const principalKey = createContextKey<LatchPrincipal | undefined>(undefined, { description: 'latch principal' });

/** A policy for every method, or per method (return undefined to leave a method public). */
export type PolicyFor = LatchPolicy | ((method: DescMethod) => LatchPolicy | undefined);

/**
 * A connect-node server interceptor (`connectNodeAdapter({ routes, interceptors: [latchInterceptor(auth)] })`):
 * refuses the call with UNAUTHENTICATED / PERMISSION_DENIED / UNAVAILABLE, or puts the principal
 * where `principalOf(ctx)` finds it.
 */
export function latchInterceptor(auth: LatchAuth, policy: PolicyFor = requireUser): Interceptor {
  return (next) => async (req) => {
    const p = typeof policy === 'function' ? policy(req.method) : policy;
    if (p === undefined) return next(req);
    const header = req.header.get('authorization');
    try {
      // Warm cache: no await before the handler.
      const principal = auth.authorizeCached(header, p) ?? (await auth.authorize(header, p));
      req.contextValues.set(principalKey, principal);
    } catch (err) {
      throw toConnectError(err);
    }
    return next(req);
  };
}

/** The verified principal of a call the interceptor let through; throws when there is none. */
export function principalOf(ctx: Pick<HandlerContext, 'values'>): LatchPrincipal {
  const p = ctx.values.get(principalKey);
  if (!p) throw new ConnectError('no verified principal: is latchInterceptor installed for this method?', Code.Internal);
  return p;
}

const CODES = { unauthenticated: Code.Unauthenticated, permission_denied: Code.PermissionDenied, unavailable: Code.Unavailable } as const;

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof LatchAuthError) return new ConnectError(err.message, CODES[err.code]);
  // Anything unexpected is still a refusal, never a pass.
  return new ConnectError('authentication could not be checked', Code.Unavailable);
}
