import type { ClientInfo } from '../../../shared/client-info.js';
import { createContextKey } from '@connectrpc/connect';
import { LatchError } from '../../../shared/errors.js';

/**
 * Per-call values shared between the transports, the pipeline and the service implementations.
 * The transports set only `peerAddressKey`, `requestDecodeFailureKey` and `decodedRequestKey`; everything else is
 * derived by the pipeline steps (client-info.ts, auth-policy.ts).
 */

/** Who the access token says the caller is (set for methods with policy 'user' or 'admin'). */
export interface Principal {
  userId: string;
  role: 'user' | 'admin';
  sessionId: string;
  passwordMustChange: boolean;
  /** Authentication methods of the session, e.g. ['pwd', 'otp'] (RFC 8176). */
  amr: string[];
  /**
   * The rest of the account as the authentication found it (the same cached user state Introspect
   * answers from, introspection/user-state-cache.ts): what GetCurrentUser returns without a query.
   */
  email: string;
  createdAtMs: number;
  totpEnabled: boolean;
  emailVerified: boolean;
}

/**
 * Raw socket peer as the transport saw it: grpc-js `ipv4:1.2.3.4:5678`, node `::ffff:1.2.3.4`. Or
 * what reads it, where reading costs more than most calls need (grpc-js's getPeer goes through
 * the session's socket proxy); it is read while the call is open, at most once.
 */
export const peerAddressKey = createContextKey<string | (() => string)>('', { description: 'peer address' });

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: 'principal' });

/** Name of the calling service authenticated by its introspection credential (policy 'caller'). */
export const callerKey = createContextKey<string | undefined>(undefined, { description: 'caller' });

export const clientInfoKey = createContextKey<ClientInfo>({ ip: '', userAgent: '' }, { description: 'client info' });

/**
 * Set by a transport whose request body could not be read or decoded: the pipeline fails the call
 * with this error before anything else, so it is logged and measured like any failed call (X1).
 */
export const requestDecodeFailureKey = createContextKey<LatchError | undefined>(undefined, {
  description: 'request decode failure',
});

/**
 * Set by a transport that already decoded the request to check it (http-decode-guard.ts): connect
 * is handed an empty message instead of decoding the same bytes again, and the pipeline swaps this
 * one in (request-hygiene.ts).
 */
export const decodedRequestKey = createContextKey<unknown>(undefined, { description: 'decoded request' });

/** What both transports store under requestDecodeFailureKey for a body that is not the message. */
export const undecodableRequest = () =>
  new LatchError('invalid_argument', 'ERR_UNDECODABLE_REQUEST', 'request message could not be decoded');
