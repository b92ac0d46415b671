/**
 * Latch SDK: protect another service's Connect, gRPC (grpc-js) and plain HTTP handlers with
 * Latch access tokens (docs/sdk.md).
 */
export { LatchAuth, bearerToken, type LatchAuthOptions, type IntrospectSource } from './auth.js';
export { introspectionClient, type Introspect, type IntrospectionClientOptions } from './introspection-client.js';
export { TokenCache, type TokenCacheOptions } from './token-cache.js';
export { DEFAULT_EVENTS_SUBJECT_PREFIX, type RevocationFeedOptions } from './revocation.js';
export { allOf, enforce, requireAdmin, requireMfa, requireUser, requireVerifiedEmail, type LatchPolicy } from './policy.js';
export { HTTP_STATUS, LatchAuthError, type LatchFailureCode, type LatchPrincipal, type RefusalReason } from './principal.js';
export { latchInterceptor, principalOf, toConnectError, type PolicyFor } from './connect.js';
export { guardUnary, userUnary, toGrpcError, type GuardedUnary } from './grpc.js';
export { latchMiddleware, sendRefusal, withLatch, type AuthenticatedRequest } from './http.js';
export { LocalVerifier, type LocalVerifierOptions } from './local-verify.js';
