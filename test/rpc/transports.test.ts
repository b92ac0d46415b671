import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { service as healthService } from 'grpc-health-check';
import { RetryInfoSchema } from '../../gen/google/rpc/error_details_pb.js';
import { AuthService } from '../../gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService } from '../../gen/identity/v1/introspection_pb.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/identity/rpc/grpc-server.js';
import { startHttpServer, type RunningHttpServer } from '../../src/identity/rpc/http-server.js';
import { createMetrics } from '../../src/identity/rpc/metrics.js';
import { wrapService } from '../../src/identity/rpc/pipeline.js';
import { authImpl, captureLogs, fakeAuth, introspectionImpl, secrets } from './fakes.js';
import { decodeGrpcError, grpcCall, grpcClient } from './grpc-client.js';

const logs = captureLogs();
const metrics = createMetrics();
let grpcServer: RunningGrpcServer;
let httpServer: RunningHttpServer;
let serving = true;
let ready = true;

type IntrospectionClient = Client<typeof TokenIntrospectionService>;
let connect: IntrospectionClient;
let grpcWeb: IntrospectionClient;
let grpcJs: grpc.Client;

beforeAll(async () => {
  const pipeline = { auth: fakeAuth, logger: logs.logger, metrics, trustedProxies: [] };
  // One wrapped implementation, mounted on both listeners.
  const services = [
    { service: AuthService, impl: wrapService(AuthService, authImpl, pipeline) },
    { service: TokenIntrospectionService, impl: wrapService(TokenIntrospectionService, introspectionImpl, pipeline) },
  ];
  grpcServer = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    services,
    logger: logs.logger,
    health: { isServing: () => serving },
    healthPollMs: 50,
  });
  httpServer = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    services,
    corsOrigins: ['https://app.example.com'],
    logger: logs.logger,
    metricsRegistry: metrics.registry,
    ready: async () => ready,
    jwks: () => '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1"}]}',
  });
  const baseUrl = `http://127.0.0.1:${httpServer.port}`;
  connect = createClient(TokenIntrospectionService, createConnectTransport({ baseUrl, httpVersion: '1.1' }));
  grpcWeb = createClient(TokenIntrospectionService, createGrpcWebTransport({ baseUrl, httpVersion: '1.1' }));
  grpcJs = grpcClient(TokenIntrospectionService, grpcServer.port);
});

afterAll(async () => {
  grpcJs?.close();
  await grpcServer?.stop(1000);
  await httpServer?.stop(1000);
});

const caller = { authorization: `Bearer ${secrets.callerSecret}`, 'user-agent': 'transport-test/1.0' };

interface Outcome {
  ok?: { active: boolean; sub: string; amr: string[]; clientId: string };
  code?: Code;
  message?: string;
  errorId?: string | null;
  retryAfter?: string | null;
  retryDelayMs?: number;
}

async function viaConnectClient(client: IntrospectionClient, token: string, headers: Record<string, string> = caller): Promise<Outcome> {
  try {
    const r = await client.introspect({ token }, { headers });
    return { ok: { active: r.active, sub: r.sub, amr: r.amr, clientId: r.clientId } };
  } catch (e) {
    const ce = ConnectError.from(e);
    const d = ce.findDetails(RetryInfoSchema)[0]?.retryDelay;
    return {
      code: ce.code,
      message: ce.rawMessage,
      errorId: ce.metadata.get('latch-error-id'),
      retryAfter: ce.metadata.get('retry-after'),
      retryDelayMs: d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : undefined,
    };
  }
}

async function viaGrpcJs(token: string, headers: Record<string, string> = caller): Promise<Outcome> {
  const { res, err } = await grpcCall<{ active: boolean; sub: string; amr: string[]; clientId: string }>(
    grpcJs,
    'introspect',
    { token },
    headers,
  );
  if (err === undefined) return { ok: { active: res!.active, sub: res!.sub, amr: res!.amr, clientId: res!.clientId } };
  const d = decodeGrpcError(err)?.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return {
    code: err.code as number as Code,
    message: err.details,
    errorId: (err.metadata.get('latch-error-id')[0] as string | undefined) ?? null,
    retryAfter: (err.metadata.get('retry-after')[0] as string | undefined) ?? null,
    retryDelayMs: d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : undefined,
  };
}

describe('one implementation, three client protocols', () => {
  it.each(['good', 'inactive', 'throttle', 'bad-arg', 'bug', 'down'])('token %s gives the same outcome everywhere', async (token) => {
    const [a, b, c] = await Promise.all([viaGrpcJs(token), viaConnectClient(connect, token), viaConnectClient(grpcWeb, token)]);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    if (token === 'good') {
      expect(a.ok?.active).toBe(true);
      expect(a.ok?.amr).toEqual(['pwd', 'otp']);
      expect(a.ok?.clientId).toBe('orders-service|127.0.0.1|transport-test/1.0');
    }
    if (token === 'throttle') {
      expect(a).toMatchObject({ code: Code.ResourceExhausted, errorId: 'ERR_THROTTLED', retryAfter: '2', retryDelayMs: 1500 });
    }
    if (token === 'bug') expect(a).toMatchObject({ code: Code.Internal, message: 'internal error', errorId: 'ERR_INTERNAL' });
  });

  it('rejects missing and wrong caller credentials with UNAUTHENTICATED everywhere', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong-secret' }, { authorization: `Basic ${secrets.callerSecret}` }]) {
      const outs = await Promise.all([viaGrpcJs('good', headers), viaConnectClient(connect, 'good', headers), viaConnectClient(grpcWeb, 'good', headers)]);
      for (const o of outs) expect(o.code).toBe(Code.Unauthenticated);
    }
  });

  it('delivers response headers and trailers set by the handler', async () => {
    const r = await grpcCall(grpcJs, 'introspect', { token: 'good' }, caller);
    expect(r.headers.get('x-latch-test')).toEqual(['header']);
    expect(r.trailers.get('x-latch-trailer')).toEqual(['trailer']);
    for (const client of [connect, grpcWeb]) {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      await client.introspect({ token: 'good' }, { headers: caller, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
      expect(header?.get('x-latch-test')).toBe('header');
      expect(trailer?.get('x-latch-trailer')).toBe('trailer');
    }
  });

  it('answers undecodable protobuf with INVALID_ARGUMENT on grpc-js', async () => {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      grpcJs.makeUnaryRequest(
        '/identity.v1.TokenIntrospectionService/Introspect',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        (e) => resolve(e),
      );
    });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('answers an unknown method with UNIMPLEMENTED on grpc-js', async () => {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      grpcJs.makeUnaryRequest('/identity.v1.TokenIntrospectionService/Nope', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e) => resolve(e));
    });
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('enforces the 64 KiB message cap on both listeners', async () => {
    const big = 'x'.repeat(70 * 1024);
    expect((await viaGrpcJs(big)).code).toBe(Code.ResourceExhausted);
    const viaConnect = await viaConnectClient(connect, big);
    expect(viaConnect.ok).toBeUndefined();
  });

  it('records metrics per transport', async () => {
    const text = await metrics.registry.metrics();
    for (const t of ['grpc', 'connect', 'grpc-web']) {
      expect(text).toContain(`method="Introspect",code="ok",transport="${t}"`);
    }
    expect(text).toContain('latch_process_cpu_user_seconds_total');
  });

  it('never logs a credential', () => {
    const text = logs.text();
    expect(text).toContain('"rpc":"identity.v1.TokenIntrospectionService/Introspect"');
    for (const s of [secrets.callerSecret, 'wrong-secret', 'Bearer wrong']) expect(text).not.toContain(s);
  });
});

describe('grpc health', () => {
  it('reports SERVING for the server and each service, and follows isServing()', async () => {
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const client = new Health(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<unknown>((resolve, reject) =>
        (client as unknown as Record<string, Function>).Check!({ service }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))),
      );
    try {
      expect(await check('')).toBe('SERVING');
      expect(await check('identity.v1.AuthService')).toBe('SERVING');
      await expect(check('no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      serving = false;
      await new Promise((r) => setTimeout(r, 200));
      expect(await check('')).toBe('NOT_SERVING');
      expect(await check('identity.v1.TokenIntrospectionService')).toBe('NOT_SERVING');
    } finally {
      serving = true;
      client.close();
    }
    await new Promise((r) => setTimeout(r, 200));
  });
});
