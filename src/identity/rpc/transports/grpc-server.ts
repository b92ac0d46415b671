import net from 'node:net';
import { Server, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from '../../../shared/logger.js';
import { addGrpcService } from './grpc-adapter.js';
import { reflectionPackage } from './grpc-reflection.js';
import { MAX_MESSAGE_BYTES, type MountedService } from './mounted-service.js';

export interface GrpcServerOptions {
  host: string;
  port: number;
  services: MountedService[];
  logger: Logger;
  health: { isServing(): boolean };
  /** How often health status is re-read from `health.isServing()`. */
  healthPollMs?: number;
  /**
   * Server reflection (v1, v1alpha) for grpcurl / buf curl, describing every service on the port;
   * off, it is not mounted at all (docs/security.md X4). Default on.
   */
  reflection?: boolean;
  /** A connection that has not sent the HTTP/2 preface within this is closed (X4). Default 10 s. */
  handshakeTimeoutMs?: number;
}

export interface RunningGrpcServer {
  port: number;
  server: Server;
  stop(graceMs: number): Promise<void>;
}

/** "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 §3.4). */
const HTTP2_PREFACE_BYTES = 24;
/** At stop, how long a connection still in its handshake may take to send its call. */
const STOP_HANDSHAKE_WINDOW_MS = 1000;

const serverOptions: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_concurrent_streams': 256,
  // Detect dead peers without waiting for TCP timeouts.
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  // Recycle connections so new replicas behind an L4 balancer receive traffic.
  'grpc.max_connection_age_ms': 30 * 60_000,
  'grpc.max_connection_age_grace_ms': 30_000,
  // Established connections without calls; connections that never become HTTP/2 are the
  // handshake timeout's (below): grpc-js has no option for those.
  'grpc.max_connection_idle_ms': 5 * 60_000,
  // No channelz service is served, so its per-call bookkeeping (counters, timestamps, a tracker
  // object per call) would only cost Introspect time.
  'grpc.enable_channelz': 0,
};

export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { logger } = opts;
  const server = new Server(serverOptions);
  for (const { service, impl } of opts.services) addGrpcService(server, service, impl, logger);

  if (opts.reflection ?? true) {
    new ReflectionService(reflectionPackage(opts.services.map((s) => s.service))).addToServer(server);
  }

  // '' is the overall status (grpc.health.v1: "an empty service name means the server").
  const names = ['', ...opts.services.map((s) => s.service.typeName)];
  const statusOf = (): ServingStatus => (opts.health.isServing() ? 'SERVING' : 'NOT_SERVING');
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, statusOf()])));
  health.addToServer(server);
  let last = statusOf();
  const poll = setInterval(() => {
    const now = statusOf();
    if (now !== last) names.forEach((n) => health.setStatus(n, now));
    last = now;
  }, opts.healthPollMs ?? 1000);
  poll.unref();

  // We own the listening socket and hand each connection to grpc-js, so that one which never
  // sends the HTTP/2 preface (a scanner, a half-open client holding a slot) is dropped after
  // handshakeTimeoutMs; grpc-js alone would keep it until the idle timeout at best.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    // Errors also reach the HTTP/2 session; this only keeps a reset socket from being unhandled.
    socket.on('error', () => undefined);
    const handshake = setTimeout(() => {
      if (socket.bytesRead < HTTP2_PREFACE_BYTES) {
        logger.debug({ remote: socket.remoteAddress, bytes: socket.bytesRead }, 'grpc connection closed: no HTTP/2 preface in time');
        socket.destroy();
      }
    }, handshakeTimeoutMs);
    handshake.unref();
    socket.once('close', () => {
      clearTimeout(handshake);
      sockets.delete(socket);
    });
    injector.injectConnection(socket);
  });
  const port = await new Promise<number>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(opts.port, opts.host, () => {
      listener.off('error', reject);
      resolve((listener.address() as net.AddressInfo).port);
    });
  }).catch((err: unknown) => {
    clearInterval(poll);
    injector.destroy();
    server.forceShutdown();
    throw err;
  });
  listener.on('error', (err) => logger.error({ err }, 'grpc listener error'));
  logger.debug({ port }, 'grpc server listening');

  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number) =>
    (stopping ??= new Promise<void>((resolve) => {
      clearInterval(poll);
      // Health watchers and load balancers learn first, then in-flight calls get graceMs to end.
      names.forEach((n) => health.setStatus(n, 'NOT_SERVING'));
      // Resolves once every accepted socket has closed.
      const closed = new Promise<void>((r) => listener.close(() => r()));
      // A connection still in its handshake gets no GOAWAY-driven close, so it would hold stop()
      // until its handshake timeout; but a client that connected a moment ago is about to send a
      // call, so it gets a short window rather than none.
      const handshakes = setTimeout(() => {
        for (const s of sockets) if (s.bytesRead < HTTP2_PREFACE_BYTES) s.destroy();
      }, Math.min(handshakeTimeoutMs, STOP_HANDSHAKE_WINDOW_MS));
      const force = setTimeout(() => {
        logger.warn({ graceMs }, 'grpc calls still running after the grace period; closing them');
        server.forceShutdown();
        for (const s of sockets) s.destroy();
        void closed.then(resolve);
      }, graceMs);
      server.tryShutdown(() => {
        // Sessions are closed; their sockets follow.
        void closed.then(() => {
          clearTimeout(force);
          resolve();
        });
      });
      void closed.then(() => clearTimeout(handshakes));
    }));

  return { port, server, stop };
}
