import type { HandlerContext } from '@connectrpc/connect';
import { LatchError } from '../../../shared/errors.js';
import { andThen, type MaybePromise } from '../../../shared/maybe-promise.js';
import { callerKey, principalKey, type Principal } from './context-keys.js';
import type { MethodPolicy } from './method-policy.js';

/** The step that enforces a method's policy (method-policy.ts) on the credential the call carries. */

export interface Authenticator {
  /** Verifies an access token; throws (or rejects with) LatchError('unauthenticated', ...) when it is not good. */
  authenticateUser(bearerToken: string): MaybePromise<Principal>;
  /** Verifies an introspection client secret and returns the client's name. */
  authenticateCaller(bearerSecret: string): MaybePromise<string>;
}

/** RFC 6750 §2.1: `Bearer <token>`; the scheme name is case-insensitive (RFC 9110 §11.1). */
function bearerCredential(ctx: HandlerContext): string {
  const header = ctx.requestHeader.get('authorization');
  if (header === null || header.trim() === '') {
    throw new LatchError('unauthenticated', 'ERR_MISSING_CREDENTIALS', 'missing authorization');
  }
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  if (match === null) {
    throw new LatchError('unauthenticated', 'ERR_INVALID_AUTH_SCHEME', 'authorization must use the Bearer scheme');
  }
  return match[1]!;
}

/**
 * Stores who is calling under principalKey / callerKey, or throws when the policy refuses the
 * call. Done now when the credential's answer is in memory; a promise otherwise (maybe-promise.ts).
 */
export function authenticate(policy: MethodPolicy, ctx: HandlerContext, auth: Authenticator): MaybePromise<void> {
  switch (policy.auth) {
    case 'none':
      return;
    case 'caller':
      return andThen(auth.authenticateCaller(bearerCredential(ctx)), (caller) => {
        ctx.values.set(callerKey, caller);
      });
    case 'user':
    case 'admin':
      return andThen(auth.authenticateUser(bearerCredential(ctx)), (principal) => {
        ctx.values.set(principalKey, principal);
        if (policy.auth === 'admin' && principal.role !== 'admin') {
          throw new LatchError('permission_denied', 'ERR_ADMIN_REQUIRED', 'admin role required');
        }
        if (principal.passwordMustChange && policy.allowWhilePasswordMustChange !== true) {
          throw new LatchError('failed_precondition', 'ERR_PASSWORD_CHANGE_REQUIRED', 'password change required');
        }
      });
  }
}

/** The authenticated user; only methods whose policy is 'user' or 'admin' have one. */
export function requirePrincipal(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  if (p === undefined) throw new LatchError('unauthenticated', 'ERR_MISSING_CREDENTIALS', 'missing authorization');
  return p;
}

/** The authenticated introspection client; only methods whose policy is 'caller' have one. */
export function requireCaller(ctx: HandlerContext): string {
  const c = ctx.values.get(callerKey);
  if (c === undefined) throw new LatchError('unauthenticated', 'ERR_MISSING_CREDENTIALS', 'missing authorization');
  return c;
}
