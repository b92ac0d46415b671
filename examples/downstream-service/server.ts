import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { Server as GrpcServer, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import {
  guardUnary,
  latchInterceptor,
  latchMiddleware,
  principalOf,
  requireAdmin,
  requireMfa,
  requireUser,
  type AuthenticatedRequest,
  type LatchAuth,
  type LatchPolicy,
  type LatchPrincipal,
} from '../../src/sdk/index.js';
import { GreeterService, HelloRequestSchema, HelloResponseSchema, type HelloResponse } from './greeter.js';

/** Which policy guards each method, on every transport. */
const POLICIES: Record<string, LatchPolicy> = { Hello: requireUser, AdminHello: requireAdmin, SecureHello: requireMfa };

const hello = (p: LatchPrincipal): HelloResponse => ({ userId: p.userId, email: p.email, role: p.role });

export interface Downstream {
  /** Connect (and gRPC-Web) plus the plain HTTP routes GET /me and GET /admin. */
  httpUrl: string;
  /** gRPC (grpc-js). */
  grpcUrl: string;
  close(): Promise<void>;
}

export async function startDownstream(auth: LatchAuth, ports: { http?: number; grpc?: number; host?: string } = {}): Promise<Downstream> {
  const host = ports.host ?? '127.0.0.1';

  // Connect: one interceptor guards the whole router; handlers read the principal from the context.
  const connect = connectNodeAdapter({
    interceptors: [latchInterceptor(auth, (method) => POLICIES[method.name])],
    routes: (router: ConnectRouter) =>
      router.service(GreeterService, {
        hello: (_req: unknown, ctx: HandlerContext) => hello(principalOf(ctx)),
        adminHello: (_req: unknown, ctx: HandlerContext) => hello(principalOf(ctx)),
        secureHello: (_req: unknown, ctx: HandlerContext) => hello(principalOf(ctx)),
      } as never),
    fallback: (req, res) => plain(req as IncomingMessage, res as ServerResponse),
  });
  // Plain node:http routes, Express-style middleware.
  const me = latchMiddleware(auth, requireUser);
  const admin = latchMiddleware(auth, requireAdmin);
  const json = (res: ServerResponse, body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  function plain(req: IncomingMessage, res: ServerResponse): void {
    const route = req.method === 'GET' ? { '/me': me, '/admin': admin }[req.url ?? ''] : undefined;
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    route(req, res, () => json(res, hello((req as AuthenticatedRequest).latch)));
  }
  const http: HttpServer = createServer(connect);
  await new Promise<void>((resolve) => http.listen(ports.http ?? 0, host, resolve));

  // gRPC: each handler wrapped with its policy.
  const grpc = new GrpcServer();
  const impl: Record<string, ReturnType<typeof guardUnary>> = {};
  for (const m of GreeterService.methods) impl[m.localName] = guardUnary(auth, POLICIES[m.name]!, (_call, p) => hello(p));
  grpc.addService(grpcDefinition(), impl);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync(`${host}:${ports.grpc ?? 0}`, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );

  return {
    httpUrl: `http://${host}:${(http.address() as AddressInfo).port}`,
    grpcUrl: `http://${host}:${grpcPort}`,
    close: async () => {
      await new Promise<void>((resolve) => grpc.tryShutdown(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function grpcDefinition(): ServiceDefinition {
  const codec = (schema: DescMessage) => ({
    serialize: (m: unknown) => Buffer.from(toBinary(schema, create(schema, m as never))),
    deserialize: (b: Buffer) => fromBinary(schema, b),
  });
  const req = codec(HelloRequestSchema);
  const res = codec(HelloResponseSchema);
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const m of GreeterService.methods) {
    def[m.localName] = {
      path: `/${GreeterService.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
    };
  }
  return def as ServiceDefinition;
}
