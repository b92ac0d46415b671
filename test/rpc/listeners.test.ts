import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { promisify } from 'node:util';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService } from '../../src/gen/identity/v1/introspection_pb.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/identity/rpc/transports/grpc-server.js';
import { startHttpServer, type RunningHttpServer } from '../../src/identity/rpc/transports/http-server.js';
import { createMetrics } from '../../src/identity/rpc/pipeline/metrics.js';
import { wrapService } from '../../src/identity/rpc/pipeline/wrap-service.js';
import { authImpl, captureLogs, fakeAuth, introspectionImpl, secrets } from './fakes.js';
import { grpcCall, grpcClient } from './grpc-client.js';

const run = promisify(execFile);
const buf = new URL('../../node_modules/.bin/buf', import.meta.url).pathname;
const logs = captureLogs();
const metrics = createMetrics();
const services = (() => {
  const pipeline = { auth: fakeAuth, logger: logs.logger, metrics, trustedProxies: [] };
  return [
    { service: AuthService, impl: wrapService(AuthService, authImpl, pipeline) },
    { service: TokenIntrospectionService, impl: wrapService(TokenIntrospectionService, introspectionImpl, pipeline) },
  ];
})();
const jwks = '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}';
let ready = true;
let grpcServer: RunningGrpcServer;
let httpServer: RunningHttpServer;
let base: string;

const start = () =>
  Promise.all([
    startGrpcServer({ host: '127.0.0.1', port: 0, services, logger: logs.logger, health: { isServing: () => true } }),
    startHttpServer({
      host: '127.0.0.1',
      port: 0,
      services,
      corsOrigins: ['https://app.example.com'],
      logger: logs.logger,
      ready: async () => ready,
      jwks: () => jwks,
    }),
  ]);

beforeAll(async () => {
  [grpcServer, httpServer] = await start();
  base = `http://127.0.0.1:${httpServer.port}`;
});

afterAll(async () => {
  await grpcServer?.stop(500);
  await httpServer?.stop(500);
});

/** Sends raw bytes and collects whatever comes back until the peer closes or goes quiet. */
function raw(port: number, chunks: (string | Buffer)[], quietMs = 500): Promise<string> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const sock = net.connect(port, '127.0.0.1', () => {
      for (const c of chunks) sock.write(c);
    });
    let timer = setTimeout(() => sock.destroy(), quietMs);
    sock.on('data', (d) => {
      out.push(d);
      clearTimeout(timer);
      timer = setTimeout(() => sock.destroy(), quietMs);
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(out).toString('latin1'));
    });
  });
}

const leaksInternals = (s: string) => /\n\s+at |node_modules|\/work\/|\.ts:\d+|hunter2/.test(s);

async function stillServing() {
  const client = grpcClient(TokenIntrospectionService, grpcServer.port);
  const r = await grpcCall<{ keysJson: string }>(client, 'getJwks', {});
  client.close();
  expect(r.res?.keysJson).toBe('{"keys":[]}');
  const res = await fetch(`${base}/healthz`);
  expect(res.status).toBe(200);
}

describe('server reflection (buf curl)', () => {
  it.each(['grpc-v1', 'grpc-v1alpha'])('lists the services over %s', async (protocol) => {
    const { stdout } = await run(buf, [
      'curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--reflect-protocol', protocol,
      '--list-services', `http://127.0.0.1:${grpcServer.port}`,
    ]);
    const listed = stdout.trim().split('\n').sort();
    expect(listed).toEqual([
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'identity.v1.AuthService',
      'identity.v1.TokenIntrospectionService',
    ]);
  });

  it('resolves dependencies (google/protobuf/timestamp.proto) and calls a method by reflection', async () => {
    const { stdout: methods } = await run(buf, [
      'curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-methods', `http://127.0.0.1:${grpcServer.port}`,
    ]);
    expect(methods).toContain('identity.v1.AuthService/Login');
    expect(methods).toContain('identity.v1.TokenIntrospectionService/Introspect');
    const { stdout } = await run(buf, [
      'curl', '--protocol', 'grpc', '--http2-prior-knowledge', '-d', '{"email":"a@example.com","password":"x"}',
      `http://127.0.0.1:${grpcServer.port}/identity.v1.AuthService/Login`,
    ]).catch((e: { stdout: string; stderr: string }) => ({ stdout: e.stdout + e.stderr }));
    expect(stdout).toMatch(/unauthenticated/);
    expect(stdout).toMatch(/invalid email or password/);
  });
});

describe('server reflection off (X4)', () => {
  it('is not mounted: listing services fails, the services still answer', async () => {
    const g = await startGrpcServer({ host: '127.0.0.1', port: 0, services, logger: logs.logger, health: { isServing: () => true }, reflection: false });
    try {
      const out = await run(buf, [
        'curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', `http://127.0.0.1:${g.port}`,
      ]).then(
        (r) => ({ ok: true, text: r.stdout }),
        (e: { stdout: string; stderr: string }) => ({ ok: false, text: e.stdout + e.stderr }),
      );
      expect(out.ok).toBe(false);
      expect(out.text).toMatch(/unimplemented/i);
      const client = grpcClient(TokenIntrospectionService, g.port);
      const r = await grpcCall<{ keysJson: string }>(client, 'getJwks', {});
      client.close();
      expect(r.res?.keysJson).toBe('{"keys":[]}');
    } finally {
      await g.stop(500);
    }
  });
});

describe('X4: connections that never speak HTTP/2 on the gRPC port', () => {
  const HANDSHAKE_MS = 400;
  let g: RunningGrpcServer;
  beforeAll(async () => {
    g = await startGrpcServer({ host: '127.0.0.1', port: 0, services, logger: logs.logger, health: { isServing: () => true }, handshakeTimeoutMs: HANDSHAKE_MS });
  });
  afterAll(() => g?.stop(500));

  /** Opens a raw socket, writes `bytes`, and resolves with how long the server kept it open. */
  function heldOpenMs(bytes: Buffer | undefined, limitMs = 5000): Promise<number> {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const sock = net.connect(g.port, '127.0.0.1', () => {
        if (bytes) sock.write(bytes);
      });
      sock.on('data', () => undefined);
      sock.on('error', () => undefined);
      const limit = setTimeout(() => {
        sock.destroy();
        reject(new Error(`still open after ${limitMs} ms`));
      }, limitMs);
      sock.on('close', () => {
        clearTimeout(limit);
        resolve(performance.now() - t0);
      });
    });
  }

  it('closes a connection that sends nothing once the handshake timeout passes', async () => {
    const ms = await heldOpenMs(undefined);
    expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
  });

  it('closes a connection that sends less than a preface, and one that sends junk', async () => {
    await heldOpenMs(Buffer.from('PRI * HTTP/2'));
    await heldOpenMs(randomBytes(4096));
    await heldOpenMs(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  });

  it('leaves an idle HTTP/2 connection alone past the handshake timeout', async () => {
    const session = http2.connect(`http://127.0.0.1:${g.port}`);
    session.on('error', () => undefined);
    await new Promise((r) => session.once('remoteSettings', r));
    await new Promise((r) => setTimeout(r, HANDSHAKE_MS * 3));
    expect(session.closed || session.destroyed).toBe(false);
    session.close();
    const client = grpcClient(TokenIntrospectionService, g.port);
    expect((await grpcCall<{ keysJson: string }>(client, 'getJwks', {})).res?.keysJson).toBe('{"keys":[]}');
    client.close();
  });

  it('stops promptly with a connection still in its handshake', async () => {
    const s = await startGrpcServer({ host: '127.0.0.1', port: 0, services, logger: logs.logger, health: { isServing: () => true } });
    const sock = net.connect(s.port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.resume();
    await new Promise((r) => sock.once('connect', r));
    const closed = new Promise((r) => sock.once('close', r));
    const t0 = performance.now();
    await s.stop(5000);
    expect(performance.now() - t0).toBeLessThan(2000);
    await closed;
  });

  it('still refuses to bind a busy port', async () => {
    await expect(
      startGrpcServer({ host: '127.0.0.1', port: g.port, services, logger: logs.logger, health: { isServing: () => true } }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('operational endpoints', () => {
  it('serves /healthz, /readyz and the JWKS, and not /metrics (X4: that is the ops listener)', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    ready = false;
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { headers: { origin: 'https://app.example.com' } })).status).toBe(404);
    const j = await fetch(`${base}/.well-known/jwks.json`);
    expect(j.status).toBe(200);
    expect(j.headers.get('content-type')).toBe('application/jwk-set+json');
    expect(j.headers.get('cache-control')).toContain('max-age=60');
    expect(await j.json()).toEqual(JSON.parse(jwks));
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});

describe('CORS allow-list', () => {
  const preflight = (origin: string) =>
    fetch(`${base}/identity.v1.TokenIntrospectionService/Introspect`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });

  it('answers a preflight from an allowed origin', async () => {
    const res = await preflight('https://app.example.com');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('connect-protocol-version');
    expect(res.headers.get('access-control-max-age')).not.toBeNull();
  });

  it('refuses a preflight from another origin and adds no CORS headers', async () => {
    const res = await preflight('https://evil.example.net');
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('exposes the error id and retry-after to allowed origins on actual requests', async () => {
    const call = (origin: string) =>
      fetch(`${base}/identity.v1.TokenIntrospectionService/Introspect`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${secrets.callerSecret}` },
        body: JSON.stringify({ token: 'throttle' }),
      });
    const ok = await call('https://app.example.com');
    expect(ok.status).toBe(429);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/latch-error-id.*retry-after/);
    expect(ok.headers.get('latch-error-id')).toBe('ERR_THROTTLED');
    expect(ok.headers.get('retry-after')).toBe('2');
    const body = (await ok.json()) as { code: string; message: string; details?: { type: string }[] };
    expect(body.code).toBe('resource_exhausted');
    expect(body.details?.[0]?.type).toBe('google.rpc.RetryInfo');
    const other = await call('https://evil.example.net');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('X1: junk on both ports', () => {
  it('survives random bytes and a broken HTTP/2 stream on the gRPC port', async () => {
    for (let i = 0; i < 5; i++) await raw(grpcServer.port, [randomBytes(4096)], 150);
    const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    await raw(grpcServer.port, [preface, randomBytes(2048)], 150);
    await raw(grpcServer.port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], 150);
    await stillServing();
  });

  it('answers junk HTTP without a stack trace', async () => {
    const responses: string[] = [];
    responses.push(await raw(httpServer.port, ['garbage line\r\n\r\n']));
    responses.push(await raw(httpServer.port, [randomBytes(3000)]));
    responses.push(await raw(httpServer.port, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`]));
    responses.push(await raw(httpServer.port, ['POST /identity.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n']));
    expect(responses[0]).toMatch(/^HTTP\/1\.1 400/);
    expect(responses[2]).toMatch(/^HTTP\/1\.1 431/);
    for (const r of responses) expect(leaksInternals(r)).toBe(false);

    const rpc = (body: BodyInit, contentType: string, extra: Record<string, string> = {}) =>
      fetch(`${base}/identity.v1.AuthService/Login`, { method: 'POST', headers: { 'content-type': contentType, ...extra }, body });
    const cases = [
      await rpc('{"email": ', 'application/json'),
      await rpc('{"email": 5, "password": {}}', 'application/json'),
      await rpc('{"unknownField": true', 'application/json'),
      await rpc(new Blob([randomBytes(200)]), 'application/proto'),
      await rpc('hello', 'text/plain'),
      await rpc('x'.repeat(100 * 1024), 'application/json'),
      await rpc(new Blob([randomBytes(100)]), 'application/grpc-web+proto'),
      await rpc('{}', 'application/json', { 'connect-timeout-ms': 'soon' }),
    ];
    const statuses = cases.map((c) => c.status);
    // Bad JSON → 400 (invalid_argument), wrong content type → 415, oversize → 413.
    expect(statuses.slice(0, 3)).toEqual([400, 400, 400]);
    expect(statuses[4]).toBe(415);
    expect(statuses[5]).toBe(413);
    expect(statuses[7]).toBe(400);
    for (const [i, c] of cases.entries()) {
      const body = await c.text();
      expect(leaksInternals(body)).toBe(false);
      // connect-node itself reports undecodable binary protobuf as internal "parse binary: ..."
      // (cases 3 and 6); everything else stays a client error.
      if (i !== 3 && i !== 6) expect(c.status).toBeLessThan(500);
    }
    await stillServing();
  });
});

describe('graceful stop', () => {
  it('lets in-flight calls finish, then refuses new connections', async () => {
    const [g, h] = await start();
    const grpcC = grpcClient(TokenIntrospectionService, g.port);
    const connectC = createClient(
      TokenIntrospectionService,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${h.port}`, httpVersion: '1.1' }),
    );
    const auth = { authorization: `Bearer ${secrets.callerSecret}` };
    const inflightGrpc = grpcCall<{ active: boolean }>(grpcC, 'introspect', { token: 'slow' }, auth);
    const inflightHttp = connectC.introspect({ token: 'slow' }, { headers: auth });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const stopped = Promise.all([g.stop(5000), h.stop(5000)]);
    expect((await inflightGrpc).err).toBeUndefined();
    expect((await inflightHttp).active).toBe(false);
    await stopped;
    expect(Date.now() - t0).toBeLessThan(3000);
    grpcC.close();
    await expect(fetch(`http://127.0.0.1:${h.port}/healthz`)).rejects.toThrow();
  });

  it('forces connections closed after the grace period', async () => {
    const [g, h] = await start();
    // An idle-but-open raw connection that never completes a request must not hold stop() forever.
    const sock = net.connect(h.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('POST /identity.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
    sock.on('error', () => {});
    const t0 = Date.now();
    await Promise.all([g.stop(300), h.stop(300)]);
    expect(Date.now() - t0).toBeLessThan(2000);
    sock.destroy();
  });
});
