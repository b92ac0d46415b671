import http from 'node:http';
import type { Socket } from 'node:net';
import { Code, ConnectError, cors, createContextValues, type Interceptor } from '@connectrpc/connect';
import { AuthService } from '../../../gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService } from '../../../gen/identity/v1/introspection_pb.js';
import type { Logger } from '../../../shared/logger.js';
import { peerAddressKey } from '../pipeline/context-keys.js';
import { errorIdHeader, INTERNAL_MESSAGE, retryAfterHeader } from '../pipeline/error-map.js';
import { guardedConnectNodeAdapter } from './http-decode-guard.js';
import { answerProbe, listen, sendText } from './plain-http.js';
import { MAX_MESSAGE_BYTES, type MountedService } from './mounted-service.js';
import { REFRESH_COOKIE_HEADER, refreshCookieActsOn, type RefreshCookieMode } from './refresh-cookie.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  services: MountedService[];
  /** Exact origins (scheme://host[:port]) browsers may call from. */
  corsOrigins: readonly string[];
  /** Browser refresh-cookie mode (refresh-cookie.ts); undefined when off. */
  refreshCookie?: RefreshCookieMode;
  logger: Logger;
  ready(): Promise<boolean>;
  /** The JWK Set document (RFC 7517 §5). */
  jwks(): string;
  /** Methods answered by connect-unary.ts; DIRECT_CONNECT_PATHS unless given (an empty set sends every call through connect-node). */
  directPaths?: ReadonlySet<string>;
}

export interface RunningHttpServer {
  port: number;
  server: http.Server;
  stop(graceMs: number): Promise<void>;
}

/**
 * The read methods every service calls per request: their plain Connect POSTs skip connect-node's
 * router (connect-unary.ts). Not one the refresh-cookie interceptor acts on (checked at start-up).
 */
export const DIRECT_CONNECT_PATHS: ReadonlySet<string> = new Set([
  `/${TokenIntrospectionService.typeName}/${TokenIntrospectionService.method.introspect.name}`,
  `/${TokenIntrospectionService.typeName}/${TokenIntrospectionService.method.getJwks.name}`,
  `/${AuthService.typeName}/${AuthService.method.getCurrentUser.name}`,
]);

const allowMethods = cors.allowedMethods.join(', ');
const allowHeaders = [...cors.allowedHeaders, 'Authorization', REFRESH_COOKIE_HEADER].join(', ');
const exposeHeaders = [...cors.exposedHeaders, errorIdHeader, retryAfterHeader].join(', ');

/**
 * Connect/gRPC-Web for browsers plus the probes and the JWKS, on plain HTTP/1.1. /metrics is on
 * the ops listener only (ops-server.ts, docs/security.md X4).
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const { logger } = opts;
  const allowedOrigins = new Set(opts.corsOrigins);

  // The pipeline already maps errors; this is the fence for an implementation mounted without it.
  const hideUnexpected: Interceptor = (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      logger.error({ err, rpc: req.url }, 'unexpected error in connect handler');
      throw new ConnectError(INTERNAL_MESSAGE, Code.Internal);
    }
  };

  const mounted = new Set(opts.services.flatMap(({ service }) => service.methods.map((m) => `/${service.typeName}/${m.name}`)));
  const directPaths = new Set([...(opts.directPaths ?? DIRECT_CONNECT_PATHS)].filter((p) => mounted.has(p)));
  for (const p of directPaths) if (opts.refreshCookie && refreshCookieActsOn(p)) throw new Error(`${p}: the refresh cookie acts on it; it cannot skip the interceptors`);

  // Undecodable bodies reach the pipeline as INVALID_ARGUMENT instead of connect's INTERNAL (X1).
  const rpc = guardedConnectNodeAdapter({
    logger,
    routes: (router) => {
      for (const { service, impl } of opts.services) router.service(service, impl as never);
    },
    connect: true,
    grpcWeb: true,
    // gRPC proper is served faster by grpc-js on its own port.
    grpc: false,
    readMaxBytes: MAX_MESSAGE_BYTES,
    maxTimeoutMs: 60_000,
    // No shutdownSignal: closing a connection (stop() below, after the grace period) already
    // aborts the signal of the call it carries, and a shared signal would take a listener per call.
    interceptors: opts.refreshCookie ? [hideUnexpected, opts.refreshCookie.interceptor] : [hideUnexpected],
    contextValues: (req) => createContextValues().set(peerAddressKey, req.socket.remoteAddress ?? ''),
    fallback: (_req, res) => sendText(res as http.ServerResponse, 404, 'not found'),
    direct: { services: opts.services, paths: directPaths },
  });

  let stopping = false;

  // Synchronous up to the RPC hand-off: only the probes wait for anything.
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void | Promise<void> => {
    if (stopping) res.setHeader('Connection', 'close');
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const allowed = allowedOrigins.has(origin);
      const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
      res.setHeader('Vary', 'Origin');
      if (preflight) {
        if (!allowed) return sendText(res, 403, 'origin not allowed');
        res.writeHead(204, {
          'Access-Control-Allow-Origin': origin,
          'Access-Control-Allow-Methods': allowMethods,
          'Access-Control-Allow-Headers': allowHeaders,
          'Access-Control-Max-Age': '7200',
          'Content-Length': '0',
          ...opts.refreshCookie?.corsHeaders,
        });
        res.end();
        return;
      }
      if (allowed) {
        res.setHeader('Access-Control-Allow-Origin', origin);
        res.setHeader('Access-Control-Expose-Headers', exposeHeaders);
        if (opts.refreshCookie) for (const [k, v] of Object.entries(opts.refreshCookie.corsHeaders)) res.setHeader(k, v);
      }
    }

    const length = Number(req.headers['content-length'] ?? 0);
    // Envelope framing adds a few bytes per message; anything far beyond the cap is refused unread.
    if (!Number.isFinite(length) || length > MAX_MESSAGE_BYTES + 1024) {
      res.setHeader('Connection', 'close');
      return sendText(res, 413, 'request body too large');
    }

    const path = (req.url ?? '').split('?', 1)[0] ?? '';
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/.well-known/jwks.json') {
        res.writeHead(200, { 'Content-Type': 'application/jwk-set+json', 'Cache-Control': 'public, max-age=60' });
        res.end(opts.jwks());
        return;
      }
      return answerProbe(path, res, opts.ready).then((answered) => {
        if (!answered) rpc(req, res, path);
      });
    }
    rpc(req, res, path);
  };
  const failed = (req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void => {
    logger.error({ err, url: req.url }, 'http request failed');
    if (!res.headersSent) sendText(res, 500, INTERNAL_MESSAGE);
    else res.destroy();
  };

  const server = http.createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 5_000,
    },
    (req, res) => {
      try {
        onRequest(req, res)?.catch((err: unknown) => failed(req, res, err));
      } catch (err) {
        failed(req, res, err);
      }
    },
  );
  // Malformed HTTP never reaches a handler: answer briefly and drop the socket (no stack, no echo).
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const port = await listen(server, opts.port, opts.host);
  logger.debug({ port }, 'http server listening');

  let stopped: Promise<void> | undefined;
  const stop = (graceMs: number) =>
    (stopped ??= new Promise<void>((resolve) => {
      stopping = true;
      // close() stops accepting and drops idle keep-alive sockets; sockets that finish a request
      // later are swept by the interval (their responses also carry Connection: close).
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const force = setTimeout(() => {
        logger.warn({ graceMs }, 'http requests still running after the grace period; closing them');
        server.closeAllConnections();
      }, graceMs);
      server.close(() => {
        clearInterval(sweep);
        clearTimeout(force);
        resolve();
      });
    }));

  return { port, server, stop };
}
