import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { TokenIntrospectionService, type IntrospectResponse } from '../gen/identity/v1/introspection_pb.js';
import { LatchAuthError, type LatchPrincipal } from './principal.js';

export interface IntrospectionClientOptions {
  /**
   * Where Latch listens: its gRPC port (`http://latch:50051`) for protocol "grpc", its HTTP port
   * (`http://latch:8080`) for protocol "connect". Ignored when `transport` is given.
   */
  baseUrl?: string;
  /** Default "grpc" (HTTP/2, binary). "connect" speaks the Connect protocol over HTTP/1.1. */
  protocol?: 'grpc' | 'connect';
  /** This service's introspection credential (one of Latch's INTROSPECTION_CLIENTS secrets). */
  credential: string;
  /** Deadline of one Introspect call; default 2000 ms. */
  timeoutMs?: number;
  /** A transport of your own (TLS settings, interceptors); replaces baseUrl and protocol. */
  transport?: Transport;
}

/** Asks Latch about one token: the principal when active, null when not. */
export type Introspect = (token: string) => Promise<LatchPrincipal | null>;

/**
 * Introspect over gRPC or Connect with the caller credential. Any failure to get an answer
 * (Latch down, deadline, a refused credential) throws LatchAuthError `unavailable`: "cannot tell"
 * never becomes "anonymous" or "inactive".
 */
export function introspectionClient(o: IntrospectionClientOptions): Introspect {
  if (!o.credential) throw new Error('introspection credential is required');
  const transport = o.transport ?? defaultTransport(o);
  const client: Client<typeof TokenIntrospectionService> = createClient(TokenIntrospectionService, transport);
  const headers = { authorization: `Bearer ${o.credential}` };
  const timeoutMs = o.timeoutMs ?? 2000;
  return async (token) => {
    let res: IntrospectResponse;
    try {
      res = await client.introspect({ token, tokenTypeHint: 'access_token' }, { headers, timeoutMs });
    } catch (err) {
      const e = ConnectError.from(err);
      const why = e.code === Code.Unauthenticated ? 'Latch refused this service\'s introspection credential' : 'Latch could not be asked';
      throw new LatchAuthError('unavailable', 'latch_unavailable', `${why} (${Code[e.code]})`, { cause: err });
    }
    return res.active ? toPrincipal(res, token) : null;
  };
}

function defaultTransport(o: IntrospectionClientOptions): Transport {
  if (!o.baseUrl) throw new Error('baseUrl or transport is required');
  return o.protocol === 'connect'
    ? createConnectTransport({ baseUrl: o.baseUrl, httpVersion: '1.1', useBinaryFormat: true })
    : createGrpcTransport({ baseUrl: o.baseUrl });
}

export function toPrincipal(r: IntrospectResponse, token: string): LatchPrincipal {
  return {
    userId: r.sub,
    email: r.email,
    role: r.role,
    scope: r.scope,
    amr: [...r.amr],
    sessionId: unverifiedClaims(token).sid,
    clientId: r.clientId,
    emailVerified: r.emailVerified,
    passwordMustChange: r.passwordMustChange,
    jti: r.jti,
    issuedAtMs: Number(r.iat) * 1000,
    expiresAtMs: Number(r.exp) * 1000,
  };
}

/**
 * The session id of a JWT access token, read without verifying it: used only to find the cache
 * entries a per-session revocation concerns, after Latch has vouched for the token.
 */
export function unverifiedClaims(token: string): { sid?: string } {
  const payload = token.split('.')[1];
  if (!payload) return {};
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return typeof claims.sid === 'string' ? { sid: claims.sid } : {};
  } catch {
    return {};
  }
}
