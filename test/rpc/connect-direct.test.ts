import http from 'node:http';
import { brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, toBinary } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { IntrospectRequestSchema, TokenIntrospectionService } from '../../src/gen/identity/v1/introspection_pb.js';
import { createMetrics } from '../../src/identity/rpc/pipeline/metrics.js';
import { wrapService } from '../../src/identity/rpc/pipeline/wrap-service.js';
import { startHttpServer, type RunningHttpServer } from '../../src/identity/rpc/transports/http-server.js';
import { authImpl, captureLogs, fakeAuth, introspectionImpl, secrets } from './fakes.js';

/**
 * connect-unary.ts answers the plain Connect POSTs of Introspect, GetJwks and GetCurrentUser
 * without connect-node's router. Every request below goes to two listeners built alike, one
 * with that direct path and one without, and the answers must be the same bytes: status,
 * headers and body. The recorded contexts show which path took each call.
 */

const logs = captureLogs();
const seen: string[] = [];

/** The pipeline-wrapped services, with a note of the context class each call arrived with. */
function recording<T extends object>(impl: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(impl as Record<string, (req: unknown, ctx: HandlerContext) => unknown>)) {
    out[name] = (req: unknown, ctx: HandlerContext) => {
      seen.push(ctx.constructor.name);
      return fn.call(impl, req, ctx);
    };
  }
  return out as T;
}

const pipeline = { auth: fakeAuth, logger: logs.logger, metrics: createMetrics(), trustedProxies: [] };
const services = [
  { service: AuthService, impl: recording(wrapService(AuthService, authImpl, pipeline)) },
  { service: TokenIntrospectionService, impl: recording(wrapService(TokenIntrospectionService, introspectionImpl, pipeline)) },
];

let direct: RunningHttpServer;
let router: RunningHttpServer;

beforeAll(async () => {
  const common = { host: '127.0.0.1', port: 0, services, corsOrigins: ['https://app.example.com'], logger: logs.logger, ready: async () => true, jwks: () => '{"keys":[]}' };
  direct = await startHttpServer(common);
  router = await startHttpServer({ ...common, directPaths: new Set() });
});

afterAll(async () => {
  await direct?.stop(200);
  await router?.stop(200);
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Headers that differ between any two answers (time, connection handling). */
const VOLATILE = new Set(['date', 'connection', 'keep-alive']);

function send(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const kept = Object.fromEntries(Object.entries(res.headers).filter(([k]) => !VOLATILE.has(k)));
        resolve({ status: res.statusCode ?? 0, headers: kept, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const INTROSPECT = `/${TokenIntrospectionService.typeName}/Introspect`;
const GET_JWKS = `/${TokenIntrospectionService.typeName}/GetJwks`;
const GET_CURRENT_USER = `/${AuthService.typeName}/GetCurrentUser`;
const caller = { authorization: `Bearer ${secrets.callerSecret}`, 'user-agent': 'orders/1.0 node' };
const json = (extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...caller, ...extra });
const proto = (extra: Record<string, string> = {}) => ({ 'content-type': 'application/proto', ...caller, ...extra });
const introspectProto = (token: string) => Buffer.from(toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token })));

interface Case {
  name: string;
  method?: string;
  path?: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** Whether the direct path takes it (else connect-node does, on both listeners); 'refused' when the protocol answers before any handler runs. */
  taken: boolean | 'refused';
  status: number;
}

const cases: Case[] = [
  { name: 'JSON, active', headers: json(), body: '{"token":"good"}', taken: true, status: 200 },
  { name: 'JSON, inactive', headers: json(), body: '{"token":"nope","tokenTypeHint":"access_token"}', taken: true, status: 200 },
  { name: 'binary', headers: proto(), body: introspectProto('good'), taken: true, status: 200 },
  { name: 'JSON with a charset and an unknown field', headers: json({ 'content-type': 'application/json; charset=utf-8' }), body: '{"token":"good","extra":[1]}', taken: true, status: 200 },
  { name: 'empty JSON object', headers: json(), body: '{}', taken: true, status: 200 },
  { name: 'JSON that does not parse', headers: json(), body: '{"token":', taken: true, status: 400 },
  { name: 'JSON of the wrong shape', headers: json(), body: '{"token":7}', taken: true, status: 400 },
  { name: 'binary that does not decode', headers: proto(), body: Buffer.from([0xff, 0xff, 0xff]), taken: true, status: 400 },
  { name: 'a body over the message limit', headers: json(), body: `{"token":"${'a'.repeat(64 * 1024 + 100)}"}`, taken: true, status: 429 },
  { name: 'a control character in a string field', headers: json(), body: '{"token":"go\\u0000od"}', taken: true, status: 400 },
  { name: 'error with Retry-After', headers: json(), body: '{"token":"throttle"}', taken: true, status: 429 },
  { name: 'error with a field', headers: json(), body: '{"token":"bad-arg"}', taken: true, status: 400 },
  { name: 'an unexpected failure', headers: json(), body: '{"token":"bug"}', taken: true, status: 500 },
  { name: 'backend down', headers: json(), body: '{"token":"down"}', taken: true, status: 503 },
  { name: 'no client credential', headers: { 'content-type': 'application/json' }, body: '{"token":"good"}', taken: true, status: 401 },
  { name: 'a wrong client credential', headers: json({ authorization: 'Bearer wrong' }), body: '{"token":"good"}', taken: true, status: 401 },
  { name: 'a timeout that is not a number', headers: json({ 'connect-timeout-ms': 'soon' }), body: '{"token":"good"}', taken: 'refused', status: 400 },
  { name: 'a timeout over the maximum', headers: json({ 'connect-timeout-ms': '60001' }), body: '{"token":"good"}', taken: 'refused', status: 400 },
  { name: 'a timeout that leaves time', headers: json({ 'connect-timeout-ms': '5000', 'connect-protocol-version': '1' }), body: '{"token":"good"}', taken: true, status: 200 },
  { name: 'a deadline that passes', headers: json({ 'connect-timeout-ms': '50' }), body: '{"token":"until-aborted"}', taken: true, status: 504 },
  { name: 'X-Forwarded-For from an untrusted peer', headers: json({ 'x-forwarded-for': '203.0.113.9' }), body: '{"token":"good"}', taken: true, status: 200 },
  { name: 'gzip accepted, small answer', headers: json({ 'accept-encoding': 'gzip' }), body: '{"token":"good"}', taken: true, status: 200 },
  { name: 'gzip accepted, large answer', headers: json({ 'accept-encoding': 'br, gzip', 'user-agent': 'x'.repeat(1500) }), body: '{"token":"good"}', taken: true, status: 200 },
  { name: 'an allowed origin', headers: json({ origin: 'https://app.example.com' }), body: '{"token":"good"}', taken: true, status: 200 },
  { name: 'GetJwks', path: GET_JWKS, headers: json(), body: '{}', taken: true, status: 200 },
  { name: 'GetCurrentUser', path: GET_CURRENT_USER, headers: json({ authorization: `Bearer ${secrets.userToken}` }), body: '{}', taken: true, status: 200 },
  { name: 'GetCurrentUser, binary', path: GET_CURRENT_USER, headers: proto({ authorization: `Bearer ${secrets.userToken}` }), body: Buffer.alloc(0), taken: true, status: 200 },
  { name: 'GetCurrentUser, no token', path: GET_CURRENT_USER, headers: { 'content-type': 'application/json' }, body: '{}', taken: true, status: 401 },
  { name: 'a compressed request', headers: json({ 'content-encoding': 'gzip' }), body: Buffer.from([0x1f, 0x8b]), taken: false, status: 400 },
  { name: 'an unknown content type', headers: { ...caller, 'content-type': 'text/plain' }, body: 'good', taken: false, status: 415 },
  { name: 'gRPC-Web', headers: { ...caller, 'content-type': 'application/grpc-web+proto' }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 8]), introspectProto('go')]), taken: false, status: 200 },
  { name: 'GET', method: 'GET', path: `${INTROSPECT}?encoding=json&message=%7B%7D`, headers: caller, taken: false, status: 405 },
  { name: 'another method', path: `/${AuthService.typeName}/Login`, headers: json(), body: '{"email":"a@example.com","password":"x"}', taken: false, status: 401 },
];

describe('Connect unary POSTs answered directly', () => {
  it.each(cases)('$name: the same answer as connect-node', async (c) => {
    const method = c.method ?? 'POST';
    const path = c.path ?? INTROSPECT;
    seen.length = 0;
    const want = await send(router.port, method, path, c.headers, c.body);
    const routerSaw = seen.splice(0);
    const got = await send(direct.port, method, path, c.headers, c.body);
    const directSaw = seen.splice(0);

    expect(want.status).toBe(c.status);
    expect(got.status).toBe(want.status);
    expect(got.headers).toEqual(want.headers);
    expect(got.body.toString('base64')).toBe(want.body.toString('base64'));
    // The router's listener never builds our context; the direct one does exactly when it takes the call.
    expect(routerSaw.every((name) => name !== 'HttpCallContext')).toBe(true);
    if (c.taken === 'refused') expect([routerSaw, directSaw]).toEqual([[], []]);
    else if (c.taken) expect(directSaw).toEqual(['HttpCallContext']);
    else expect(directSaw).toEqual(routerSaw);
  });

  it('compresses a large answer as connect-node does, and it decodes', async () => {
    const c = cases.find((x) => x.name === 'gzip accepted, large answer')!;
    const got = await send(direct.port, 'POST', INTROSPECT, c.headers, c.body);
    expect(got.headers['content-encoding']).toBe('br');
    expect(JSON.parse(brotliDecompressSync(got.body).toString())).toMatchObject({ active: true, sub: 'u-42' });
  });

  it('sends the handler headers and trailers (as trailer- headers) of a direct answer', async () => {
    const got = await send(direct.port, 'POST', INTROSPECT, json(), '{"token":"good"}');
    expect(got.headers['x-latch-test']).toBe('header');
    expect(got.headers['trailer-x-latch-trailer']).toBe('trailer');
    expect(got.headers['content-type']).toBe('application/json');
    expect(JSON.parse(got.body.toString())).toMatchObject({ active: true, sub: 'u-42', amr: ['pwd', 'otp'], clientId: 'orders-service|127.0.0.1|orders/1.0' });
  });

  it('aborts the signal with CANCELED when the client goes away mid-call', async () => {
    const before = logs.lines().length;
    seen.length = 0;
    await new Promise<void>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: direct.port, method: 'POST', path: INTROSPECT, headers: json(), agent: false });
      req.on('error', () => resolve());
      req.end('{"token":"until-aborted"}');
      const wait = setInterval(() => {
        if (seen.length > 0) {
          clearInterval(wait);
          req.destroy();
        }
      }, 5);
    });
    expect(seen).toEqual(['HttpCallContext']);
    // The call ends with the signal's reason, logged as a cancelled call.
    await expect.poll(() => logs.lines().slice(before).find((l) => l.rpc === `${TokenIntrospectionService.typeName}/Introspect`)?.code, { timeout: 2000 }).toBe('canceled');
  });

  it('reports a deadline to the handler as DEADLINE_EXCEEDED', async () => {
    const got = await send(direct.port, 'POST', INTROSPECT, json({ 'connect-timeout-ms': '30' }), '{"token":"until-aborted"}');
    expect(got.status).toBe(504);
    expect(JSON.parse(got.body.toString())).toMatchObject({ code: 'deadline_exceeded' });
  });
});
