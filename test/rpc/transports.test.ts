import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { service as healthService } from 'grpc-health-check';
import { RetryInfoSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService } from '../../src/gen/identity/v1/introspection_pb.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/identity/rpc/transports/grpc-server.js';
import { startHttpServer, type RunningHttpServer } from '../../src/identity/rpc/transports/http-server.js';
import { createMetrics } from '../../src/identity/rpc/pipeline/metrics.js';
import { wrapService } from '../../src/identity/rpc/pipeline/wrap-service.js';
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

/** Raw bytes to the HTTP listener, as a client that is not ours could send them (docs/security.md X1, X2). */
async function rawHttp(
  path: string,
  contentType: string,
  body: Uint8Array | string,
  extra: Record<string, string> = {},
): Promise<{ code: string | undefined; message: string; status: number }> {
  const grpcWebCall = contentType.startsWith('application/grpc-web');
  const res = await fetch(`http://127.0.0.1:${httpServer.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...caller, ...(grpcWebCall ? {} : { 'connect-protocol-version': '1' }), ...extra },
    body: typeof body === 'string' ? body : Buffer.from(body),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (!grpcWebCall) {
    const json = res.status === 200 ? {} : (JSON.parse(new TextDecoder().decode(bytes)) as { code?: string; message?: string });
    return { code: json.code ?? (res.status === 200 ? 'ok' : undefined), message: json.message ?? '', status: res.status };
  }
  // gRPC-Web: the status is in the headers (trailers-only) or in the trailer frame (flag 0x80).
  const trailers = new Headers();
  res.headers.forEach((v, k) => trailers.set(k, v));
  for (let i = 0; i + 5 <= bytes.length; ) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + i + 1, 4).getUint32(0);
    if (bytes[i]! & 0x80) {
      for (const line of new TextDecoder().decode(bytes.subarray(i + 5, i + 5 + len)).split('\r\n')) {
        const at = line.indexOf(':');
        if (at > 0) trailers.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
      }
    }
    i += 5 + len;
  }
  const status = Number(trailers.get('grpc-status') ?? -1);
  return { code: status === 0 ? 'ok' : (Code[status] ?? String(status)).replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase(), message: decodeURIComponent(trailers.get('grpc-message') ?? ''), status: res.status };
}

function envelope(message: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

function grpcJsRaw(path: string, body: Uint8Array): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    md.set('authorization', caller.authorization);
    grpcJs.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(body), md, (e) => resolve(e));
  });
}

const INTROSPECT = '/identity.v1.TokenIntrospectionService/Introspect';
const LOGIN = '/identity.v1.AuthService/Login';
/** Field 1 (token / email) = not a protobuf message at all: a length running past the end. */
const JUNK = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
/** Field 1 = the bytes C3 28: an invalid UTF-8 sequence inside a well-formed message. */
const BAD_UTF8 = new Uint8Array([0x0a, 0x02, 0xc3, 0x28]);

describe('request hygiene on both listeners (X1, X2)', () => {
  it('answers junk binary protobuf on the HTTP listener with INVALID_ARGUMENT, logged and counted', async () => {
    const before = logs.lines().length;
    expect(await rawHttp(INTROSPECT, 'application/proto', JUNK)).toMatchObject({ code: 'invalid_argument', status: 400, message: 'request message could not be decoded' });
    expect(await rawHttp(INTROSPECT, 'application/grpc-web+proto', envelope(JUNK))).toMatchObject({ code: 'invalid_argument', message: 'request message could not be decoded' });
    expect(await rawHttp(INTROSPECT, 'application/grpc-web', envelope(JUNK))).toMatchObject({ code: 'invalid_argument' });
    // Broken framing and a compressed body that does not inflate are the same caller mistake.
    expect(await rawHttp(INTROSPECT, 'application/grpc-web+proto', envelope(JUNK).subarray(0, 8))).toMatchObject({ code: 'invalid_argument' });
    expect(await rawHttp(INTROSPECT, 'application/proto', JUNK, { 'content-encoding': 'gzip' })).toMatchObject({ code: 'invalid_argument' });
    expect(await rawHttp(INTROSPECT, 'application/grpc-web+proto', envelope(JUNK, 1), { 'grpc-encoding': 'gzip' })).toMatchObject({ code: 'invalid_argument' });
    expect(await rawHttp(INTROSPECT, 'application/json', '{"token": ')).toMatchObject({ code: 'invalid_argument' });
    // GetJwks is side-effect free, so Connect also takes it as a GET with the message in the query.
    const get = await fetch(`http://127.0.0.1:${httpServer.port}/identity.v1.TokenIntrospectionService/GetJwks?connect=v1&encoding=proto&base64=1&message=${Buffer.from(JUNK).toString('base64url')}`, { headers: caller });
    expect(get.status).toBe(400);
    expect(((await get.json()) as { code: string }).code).toBe('invalid_argument');

    const access = logs.lines().slice(before).filter((l) => l.msg === 'rpc');
    expect(access.map((l) => [l.transport, l.code, l.errorId])).toEqual([
      ['connect', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['grpc-web', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['grpc-web', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['grpc-web', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['connect', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['grpc-web', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['connect', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
      ['connect', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST'],
    ]);
    expect(access.at(-1)?.rpc).toBe('identity.v1.TokenIntrospectionService/GetJwks');
    // The gRPC listener already answered INVALID_ARGUMENT; now it logs and counts it the same way.
    const mark = logs.lines().length;
    expect((await grpcJsRaw(INTROSPECT, JUNK))?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const grpcLines = logs.lines().slice(mark).filter((l) => l.msg === 'rpc');
    expect(grpcLines.map((l) => [l.transport, l.code, l.errorId])).toEqual([['grpc', 'invalid_argument', 'ERR_UNDECODABLE_REQUEST']]);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/latch_rpc_duration_seconds_count\{service="identity.v1.TokenIntrospectionService",method="Introspect",code="invalid_argument",transport="grpc"\} [1-9]/);
    expect(text).toMatch(/latch_rpc_duration_seconds_count\{service="identity.v1.TokenIntrospectionService",method="Introspect",code="invalid_argument",transport="connect"\} [1-9]/);
    expect(text).toMatch(/latch_rpc_duration_seconds_count\{service="identity.v1.TokenIntrospectionService",method="Introspect",code="invalid_argument",transport="grpc-web"\} [1-9]/);
    // The listener still serves well-formed calls afterwards.
    expect((await viaConnectClient(connect, 'good')).ok?.active).toBe(true);
  });

  it('refuses invalid UTF-8 inside a string field on every transport and codec', async () => {
    // Binary: protobuf-es decodes string fields strictly, so the message does not decode at all.
    const undecodable = { code: 'invalid_argument', message: 'request message could not be decoded' };
    expect(await rawHttp(INTROSPECT, 'application/proto', BAD_UTF8)).toMatchObject(undecodable);
    expect(await rawHttp(INTROSPECT, 'application/grpc-web+proto', envelope(BAD_UTF8))).toMatchObject(undecodable);
    const viaGrpc = await grpcJsRaw(INTROSPECT, BAD_UTF8);
    expect([viaGrpc?.code, viaGrpc?.details]).toEqual([grpc.status.INVALID_ARGUMENT, undecodable.message]);
    // JSON: the body decoder replaces the bad sequence with U+FFFD, which the string step refuses.
    const want = { code: 'invalid_argument', message: 'token: is not valid UTF-8' };
    const json = Buffer.concat([Buffer.from('{"token":"ab'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(await rawHttp(INTROSPECT, 'application/json', json)).toMatchObject(want);
    expect(await rawHttp(INTROSPECT, 'application/grpc-web+json', envelope(json))).toMatchObject(want);
    // A JSON escape can smuggle a lone surrogate past any UTF-8 decoder (protobuf-es refuses it).
    expect(await rawHttp(INTROSPECT, 'application/json', '{"token":"\\ud800"}')).toMatchObject({ code: 'invalid_argument' });
  });

  it.each([
    ['NUL', 'good\u0000'],
    ['a C1 control', 'go\u0085od'],
    ['a zero-width space', 'go\u200bod'],
    ['a right-to-left override', '\u202egood'],
  ])('refuses %s in a string field with INVALID_ARGUMENT naming it, everywhere', async (_what, token) => {
    const outs = await Promise.all([viaGrpcJs(token), viaConnectClient(connect, token), viaConnectClient(grpcWeb, token)]);
    for (const o of outs) {
      expect(o).toMatchObject({ code: Code.InvalidArgument, message: 'token: must not contain control or invisible formatting characters', errorId: 'ERR_INVALID_ARGUMENT' });
    }
  });

  it('allows format characters (an emoji ZWJ sequence) in passwords but never controls', async () => {
    const auth = createClient(AuthService, createConnectTransport({ baseUrl: `http://127.0.0.1:${httpServer.port}`, httpVersion: '1.1' }));
    const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => `${Code[ConnectError.from(e).code]}: ${ConnectError.from(e).rawMessage}`);
    // Passed the step; the (fake) password check answers.
    expect(await outcome(auth.login({ email: 'a@example.com', password: `${secrets.password} \u{1F469}\u200D\u{1F4BB}` }))).toBe('Unauthenticated: invalid email or password');
    expect(await outcome(auth.login({ email: 'a@example.com', password: `${secrets.password}\u0000` }))).toBe('InvalidArgument: password: must not contain control or invisible formatting characters');
    expect(await outcome(auth.login({ email: 'a\u200d@example.com', password: secrets.password }))).toBe('InvalidArgument: email: must not contain control or invisible formatting characters');
    expect(await outcome(auth.login({ email: 'x\u0000y@example.com', password: secrets.password }))).toMatch(/^InvalidArgument: email: /);
    const viaGrpc = await grpcJsRaw(LOGIN, new Uint8Array([0x0a, 0x03, 0x78, 0x00, 0x79, 0x12, 0x01, 0x70]));
    expect([viaGrpc?.code, viaGrpc?.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'email: must not contain control or invisible formatting characters']);
    expect(logs.text()).not.toContain(secrets.password);
  });

  it('writes exactly one line per failed call, with the error details on it', () => {
    const lines = logs.lines();
    // The three "bug" calls (one per transport) are the only server faults in this file.
    const errors = lines.filter((l) => (l.level as number) >= 50);
    expect(errors.map((l) => [l.msg, l.code, l.errorId])).toEqual([
      ['rpc', 'internal', 'ERR_INTERNAL'],
      ['rpc', 'internal', 'ERR_INTERNAL'],
      ['rpc', 'internal', 'ERR_INTERNAL'],
    ]);
    expect(JSON.stringify(errors[0])).toContain('pg: connection string');
    expect(lines.filter((l) => l.msg === 'rpc error' || l.msg === 'unexpected error in rpc handler')).toEqual([]);
    // Pressure (RESOURCE_EXHAUSTED) is a warning, once per call.
    const throttled = lines.filter((l) => l.errorId === 'ERR_THROTTLED');
    expect(throttled.map((l) => [l.level, l.msg])).toEqual([[40, 'rpc'], [40, 'rpc'], [40, 'rpc']]);
  });
});

describe('an implementation mounted without the pipeline', () => {
  it('still never answers a body that did not decode', async () => {
    const bare = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      services: [{ service: TokenIntrospectionService, impl: introspectionImpl }],
      corsOrigins: [],
      logger: logs.logger,
      ready: async () => true,
      jwks: () => '{"keys":[]}',
    } as Parameters<typeof startHttpServer>[0]);
    try {
      const res = await fetch(`http://127.0.0.1:${bare.port}/identity.v1.TokenIntrospectionService/GetJwks`, {
        method: 'POST',
        headers: { 'content-type': 'application/proto', 'connect-protocol-version': '1' },
        body: Buffer.from(JUNK),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_argument');
    } finally {
      await bare.stop(1000);
    }
  });
});
