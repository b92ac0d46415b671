import { toBinary, type DescFile, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { Server, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from '../../shared/logger.js';
import { addGrpcService } from './grpc-adapter.js';

export interface MountedService {
  service: DescService;
  /** A (wrapped, see pipeline.ts) protobuf-es ServiceImpl for `service`. */
  impl: object;
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  services: MountedService[];
  logger: Logger;
  health: { isServing(): boolean };
  /** How often health status is re-read from `health.isServing()`. */
  healthPollMs?: number;
}

export interface RunningGrpcServer {
  port: number;
  server: Server;
  stop(graceMs: number): Promise<void>;
}

/** Our messages are small; a 64 KiB cap keeps a hostile client from making us buffer megabytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

const serverOptions: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_concurrent_streams': 256,
  // Detect dead peers without waiting for TCP timeouts.
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  // Recycle connections so new replicas behind an L4 balancer receive traffic.
  'grpc.max_connection_age_ms': 30 * 60_000,
  'grpc.max_connection_age_grace_ms': 30_000,
  'grpc.max_connection_idle_ms': 5 * 60_000,
};

/**
 * Reflection wants serialized FileDescriptorProtos for every file a service's types live in,
 * dependencies included (google/protobuf/timestamp.proto...). protobuf-es has them embedded in
 * the generated code, so no .proto file is read at run time.
 */
export function reflectionPackage(services: DescService[]): ConstructorParameters<typeof ReflectionService>[0] {
  const files = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (files.has(f.proto.name)) return;
    files.set(f.proto.name, f);
    f.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const pkg: Record<string, { fileDescriptorProtos: Buffer[] }> = {};
  for (const s of services) pkg[s.typeName] = { fileDescriptorProtos };
  return pkg as unknown as ConstructorParameters<typeof ReflectionService>[0];
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { logger } = opts;
  const server = new Server(serverOptions);
  for (const { service, impl } of opts.services) addGrpcService(server, service, impl, logger);

  const reflection = new ReflectionService(reflectionPackage(opts.services.map((s) => s.service)));
  reflection.addToServer(server);

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

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(formatHostPort(opts.host, opts.port), ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  logger.debug({ port }, 'grpc server listening');

  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number) =>
    (stopping ??= new Promise<void>((resolve) => {
      clearInterval(poll);
      // Health watchers and load balancers learn first, then in-flight calls get graceMs to end.
      names.forEach((n) => health.setStatus(n, 'NOT_SERVING'));
      const force = setTimeout(() => {
        logger.warn({ graceMs }, 'grpc calls still running after the grace period; closing them');
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    }));

  return { port, server, stop };
}
