import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { LatchAuth } from './auth.js';
import { requireUser, type LatchPolicy } from './policy.js';
import { LatchAuthError, type LatchPrincipal } from './principal.js';

/** A unary grpc-js handler that is handed the verified principal and returns (or resolves to) the response. */
export type GuardedUnary<Req, Res> = (call: ServerUnaryCall<Req, Res>, principal: LatchPrincipal) => Res | Promise<Res>;

/**
 * Wraps a unary grpc-js handler: the call fails with UNAUTHENTICATED / PERMISSION_DENIED /
 * UNAVAILABLE before the handler runs, or the handler gets the principal.
 * `server.addService(def, { getThing: guardUnary(auth, requireUser, async (call, user) => ...) })`
 */
export function guardUnary<Req, Res>(auth: LatchAuth, policy: LatchPolicy, handler: GuardedUnary<Req, Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const value = call.metadata.get('authorization')[0];
    const header = typeof value === 'string' ? value : undefined;
    auth
      .authorize(header, policy)
      .then(
        (principal) =>
          Promise.resolve()
            .then(() => handler(call, principal))
            .then(
              (res) => callback(null, res),
              (err: unknown) => callback(asServiceError(err)),
            ),
        (err: unknown) => callback(toGrpcError(err)),
      );
  };
}

/** Same as guardUnary with requireUser. */
export function userUnary<Req, Res>(auth: LatchAuth, handler: GuardedUnary<Req, Res>) {
  return guardUnary(auth, requireUser, handler);
}

const STATUS = { unauthenticated: status.UNAUTHENTICATED, permission_denied: status.PERMISSION_DENIED, unavailable: status.UNAVAILABLE } as const;

export function toGrpcError(err: unknown): Partial<ServiceError> {
  const code = err instanceof LatchAuthError ? STATUS[err.code] : status.UNAVAILABLE;
  const details = err instanceof LatchAuthError ? err.message : 'authentication could not be checked';
  return { code, details, metadata: new Metadata() };
}

function asServiceError(err: unknown): Partial<ServiceError> {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number') return err as Partial<ServiceError>;
  return { code: status.INTERNAL, details: 'internal error', metadata: new Metadata() };
}
