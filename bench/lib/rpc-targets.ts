import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { GetCurrentUserRequestSchema, GetCurrentUserResponseSchema } from '../../src/gen/identity/v1/auth_pb.js';
import { IntrospectRequestSchema, IntrospectResponseSchema } from '../../src/gen/identity/v1/introspection_pb.js';
import type { FloorProcess } from './floor.js';
import { connectJsonRequest, grpcRequest, probe, probeJson } from './h2load.js';
import type { LoadShape, LoadTarget } from './load-set.js';
import { rpcCounts } from './server-stats.js';
import type { ServiceProcess } from './target.js';

/**
 * The load targets of the bench: Introspect and GetCurrentUser on the identity service over
 * gRPC and over Connect JSON, grpc-js's own health check, and the two floor servers. Each knows
 * the exact request h2load replays and how to tell a right answer from a wrong one.
 */

const INTROSPECT = 'identity.v1.TokenIntrospectionService/Introspect';
const GET_CURRENT_USER = 'identity.v1.AuthService/GetCurrentUser';

export interface Caller {
  /** A user's access token: the token introspected, and the credential of GetCurrentUser. */
  accessToken: string;
  userId: string;
  introspectionSecret: string;
}

const introspectMessage = (c: Caller) => create(IntrospectRequestSchema, { token: c.accessToken, tokenTypeHint: 'access_token' });
const clientAuth = (c: Caller) => ({ authorization: `Bearer ${c.introspectionSecret}` });
const userAuth = (c: Caller) => ({ authorization: `Bearer ${c.accessToken}` });

export function grpcIntrospect(label: string, baseUrl: string, pid: number, c: Caller, shape: LoadShape, opsUrl?: string): LoadTarget {
  const request = grpcRequest(`/${INTROSPECT}`, toBinary(IntrospectRequestSchema, introspectMessage(c)), clientAuth(c));
  return {
    label,
    baseUrl,
    request,
    shape,
    pid,
    service: opsUrl ? { opsUrl, method: INTROSPECT } : undefined,
    async probe() {
      const p = await probe(baseUrl, request);
      const body = p.grpcStatus === '0' ? fromBinary(IntrospectResponseSchema, p.message) : undefined;
      return { ok: body?.active === true && body.sub === c.userId, detail: `grpc-status ${p.grpcStatus}, active=${body?.active}, sub ${body?.sub === c.userId ? 'matches' : 'differs'}` };
    },
  };
}

export function grpcGetCurrentUser(label: string, svc: ServiceProcess, c: Caller, shape: LoadShape): LoadTarget {
  const request = grpcRequest(`/${GET_CURRENT_USER}`, toBinary(GetCurrentUserRequestSchema, create(GetCurrentUserRequestSchema)), userAuth(c));
  return {
    label,
    baseUrl: svc.grpcUrl,
    request,
    shape,
    pid: svc.pid,
    service: { opsUrl: svc.opsUrl, method: GET_CURRENT_USER },
    async probe() {
      const p = await probe(svc.grpcUrl, request);
      const body = p.grpcStatus === '0' ? fromBinary(GetCurrentUserResponseSchema, p.message) : undefined;
      return { ok: body?.user?.id === c.userId, detail: `grpc-status ${p.grpcStatus}, user ${body?.user?.id === c.userId ? 'matches' : 'differs'}` };
    },
  };
}

export function grpcHealth(label: string, svc: ServiceProcess, shape: LoadShape): LoadTarget {
  const request = grpcRequest('/grpc.health.v1.Health/Check', new Uint8Array(0));
  return {
    label,
    baseUrl: svc.grpcUrl,
    request,
    shape,
    pid: svc.pid,
    async probe() {
      const p = await probe(svc.grpcUrl, request);
      // HealthCheckResponse { status: SERVING (1) } is the two bytes 08 01.
      return { ok: p.grpcStatus === '0' && p.message.equals(Buffer.from([8, 1])), detail: `grpc-status ${p.grpcStatus}` };
    },
  };
}

export function connectIntrospect(label: string, baseUrl: string, pid: number, c: Caller, shape: LoadShape, opsUrl?: string): LoadTarget {
  const m = introspectMessage(c);
  const request = connectJsonRequest(`/${INTROSPECT}`, { token: m.token, tokenTypeHint: m.tokenTypeHint }, clientAuth(c));
  return {
    label,
    baseUrl,
    request,
    shape,
    pid,
    service: opsUrl ? { opsUrl, method: INTROSPECT } : undefined,
    async probe() {
      const p = await probeJson(baseUrl, request);
      const body = p.json as { active?: boolean; sub?: string };
      return { ok: p.status === 200 && body.active === true && body.sub === c.userId, detail: `HTTP ${p.status}, active=${body.active}, sub ${body.sub === c.userId ? 'matches' : 'differs'}` };
    },
  };
}

export function connectGetCurrentUser(label: string, svc: ServiceProcess, c: Caller, shape: LoadShape): LoadTarget {
  const request = connectJsonRequest(`/${GET_CURRENT_USER}`, {}, userAuth(c));
  return {
    label,
    baseUrl: svc.httpUrl,
    request,
    shape,
    pid: svc.pid,
    service: { opsUrl: svc.opsUrl, method: GET_CURRENT_USER },
    async probe() {
      const p = await probeJson(svc.httpUrl, request);
      const body = p.json as { user?: { id?: string } };
      return { ok: p.status === 200 && body.user?.id === c.userId, detail: `HTTP ${p.status}, user ${body.user?.id === c.userId ? 'matches' : 'differs'}` };
    },
  };
}

/** The floors answer every Introspect with the prebuilt response, whatever the token. */
export function floorTargets(floors: { grpc: FloorProcess; connect: FloorProcess }, c: Caller, grpcShape: LoadShape, connectShape: LoadShape) {
  return {
    grpc: grpcIntrospect('floor (b) bare grpc-js Introspect', floors.grpc.baseUrl, floors.grpc.pid, c, grpcShape),
    connect: connectIntrospect('floor (c) bare connect-node Introspect', floors.connect.baseUrl, floors.connect.pid, c, connectShape),
  };
}

/** Introspect calls the server has answered so far, by any code: the denominator for per-call database reads. */
export async function introspectCalls(svc: ServiceProcess): Promise<number> {
  let n = 0;
  for (const [key, v] of await rpcCounts(svc.opsUrl)) if (key.split(' ')[0]!.toLowerCase() === INTROSPECT.toLowerCase()) n += v;
  return n;
}

/** The service's own answer to Introspect, encoded once: the floors send these very bytes. */
export async function introspectResponseBytes(svc: ServiceProcess, c: Caller): Promise<Uint8Array> {
  const p = await probe(svc.grpcUrl, grpcRequest(`/${INTROSPECT}`, toBinary(IntrospectRequestSchema, introspectMessage(c)), clientAuth(c)));
  if (p.grpcStatus !== '0') throw new Error(`Introspect answered grpc-status ${p.grpcStatus}`);
  // Decoded and encoded again with toBinary so the floor's payload is a canonical encoding of the same answer.
  return toBinary(IntrospectResponseSchema, fromBinary(IntrospectResponseSchema, p.message));
}
