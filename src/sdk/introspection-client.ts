import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { Client as GrpcJsClient, credentials as grpcCredentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  IntrospectRequestSchema,
  IntrospectResponseSchema,
  TokenIntrospectionService,
  type IntrospectRequest,
  type IntrospectResponse,
} from '../gen/identity/v1/introspection_pb.js';
import { LatchAuthError, type LatchPrincipal } from './principal.js';

export interface IntrospectionClientOptions {
  /**
   * Where Latch listens: its gRPC port (`http://latch:50051`) for protocol "grpc", its HTTP port
   * (`http://latch:8080`) for protocol "connect". Ignored when `transport` is given.
   */
  baseUrl?: string;
  /**
   * Default "grpc": gRPC over HTTP/2 with connect-node's transport. "grpc-js": the same protocol
   * through a @grpc/grpc-js client (for services that already run grpc-js; https:// base URLs use
   * TLS with the system roots). "connect": the Connect protocol over HTTP/1.1 at the HTTP port.
   */
  protocol?: 'grpc' | 'grpc-js' | 'connect';
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
  const timeoutMs = o.timeoutMs ?? 2000;
  const call = o.transport === undefined && o.protocol === 'grpc-js' ? grpcJsCall(o, timeoutMs) : connectCall(o, timeoutMs);
  return async (token) => {
    let res: IntrospectResponse;
    try {
      res = await call({ token, tokenTypeHint: 'access_token' });
    } catch (err) {
      const e = ConnectError.from(err);
      const why = e.code === Code.Unauthenticated ? 'Latch refused this service\'s introspection credential' : 'Latch could not be asked';
      throw new LatchAuthError('unavailable', 'latch_unavailable', `${why} (${Code[e.code]})`, { cause: err });
    }
    return res.active ? toPrincipal(res, token) : null;
  };
}

type IntrospectCall = (req: Pick<IntrospectRequest, 'token' | 'tokenTypeHint'>) => Promise<IntrospectResponse>;

function connectCall(o: IntrospectionClientOptions, timeoutMs: number): IntrospectCall {
  const client: Client<typeof TokenIntrospectionService> = createClient(TokenIntrospectionService, o.transport ?? defaultTransport(o));
  const headers = { authorization: `Bearer ${o.credential}` };
  return (req) => client.introspect(req, { headers, timeoutMs });
}

/** The call through a @grpc/grpc-js client; its errors carry the gRPC status, as ConnectErrors do. */
function grpcJsCall(o: IntrospectionClientOptions, timeoutMs: number): IntrospectCall {
  if (!o.baseUrl) throw new Error('baseUrl or transport is required');
  const url = new URL(o.baseUrl);
  const client = new GrpcJsClient(url.host, url.protocol === 'https:' ? grpcCredentials.createSsl() : grpcCredentials.createInsecure());
  const path = `/${TokenIntrospectionService.typeName}/${TokenIntrospectionService.method.introspect.name}`;
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${o.credential}`);
  const serialize = (m: Pick<IntrospectRequest, 'token' | 'tokenTypeHint'>) => Buffer.from(toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, m)));
  const deserialize = (b: Buffer) => fromBinary(IntrospectResponseSchema, b);
  return (req) =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(path, serialize, deserialize, req, metadata, { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res?: IntrospectResponse) => {
        if (err || !res) reject(new ConnectError(err?.details ?? 'no answer', (err?.code ?? Code.Unknown) as number as Code));
        else resolve(res);
      });
    });
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
