import http from 'node:http';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../../../shared/logger.js';
import { answerProbe, listen, sendText } from './plain-http.js';

export interface OpsServerOptions {
  /** Loopback unless the operator says otherwise: these endpoints are for scrapers and probes. */
  host: string;
  port: number;
  logger: Logger;
  metricsRegistry: Registry;
  ready(): Promise<boolean>;
}

export interface RunningOpsServer {
  port: number;
  server: http.Server;
  stop(): Promise<void>;
}

/**
 * Operator endpoints on a listener of their own (docs/security.md X4): /metrics tells the Node version,
 * memory and per-method error counts, which is for the operator's scraper, not for the browsers
 * that reach HTTP_PORT. /healthz and /readyz are here too, for probes that only reach this port.
 */
export async function startOpsServer(opts: OpsServerOptions): Promise<RunningOpsServer> {
  const { logger } = opts;
  const server = http.createServer({ maxHeaderSize: 8 * 1024, headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    handle(opts, req, res).catch((err: unknown) => {
      logger.error({ err, url: req.url }, 'ops request failed');
      if (!res.headersSent) sendText(res, 500, 'internal error');
      else res.destroy();
    });
  });
  server.on('clientError', (_err: Error, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  const port = await listen(server, opts.port, opts.host);
  logger.debug({ port, host: opts.host }, 'ops server listening');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= new Promise<void>((resolve) => {
      // Scrapes are short and carry nothing worth waiting for.
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return { port, server, stop };
}

async function handle(opts: OpsServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed');
  if (path === '/metrics') {
    res.writeHead(200, { 'Content-Type': opts.metricsRegistry.contentType });
    res.end(await opts.metricsRegistry.metrics());
    return;
  }
  if (!(await answerProbe(path ?? '', res, opts.ready))) sendText(res, 404, 'not found');
}
