import * as grpc from '@grpc/grpc-js';
import type { DescService } from '@bufbuild/protobuf';
import { findTrailerError } from '@connectrpc/connect/protocol-grpc';
import type { ConnectError } from '@connectrpc/connect';
import { grpcServiceDefinition } from '../../src/identity/rpc/transports/grpc-adapter.js';

export interface GrpcResult<T> {
  res?: T;
  err?: grpc.ServiceError;
  headers: grpc.Metadata;
  trailers: grpc.Metadata;
}

/** A plain grpc-js client for a protobuf-es service, as another service would build one. */
export function grpcClient(service: DescService, port: number): grpc.Client {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.primary_user_agent': 'transport-test/1.0' });
}

export function grpcCall<T>(
  client: grpc.Client,
  method: string,
  req: object,
  metadata: Record<string, string> = {},
  options: grpc.CallOptions = {},
): Promise<GrpcResult<T>> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    let headers = new grpc.Metadata();
    let res: T | undefined;
    let err: grpc.ServiceError | undefined;
    const fn = (client as unknown as Record<string, Function>)[method]!.bind(client);
    const call = fn(req, md, options, (e: grpc.ServiceError | null, r: T) => {
      err = e ?? undefined;
      res = r;
    }) as grpc.ClientUnaryCall;
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('status', (s: grpc.StatusObject) => {
      // 'status' can precede the callback; let the callback run first.
      setImmediate(() => resolve({ res, err, headers, trailers: s.metadata }));
    });
  });
}

/** Reads grpc-status-details-bin the way connect clients do, to compare details across transports. */
export function decodeGrpcError(err: grpc.ServiceError): ConnectError | undefined {
  const h = new Headers();
  h.set('grpc-status', String(err.code));
  h.set('grpc-message', encodeURIComponent(err.details));
  for (const [k, values] of Object.entries(err.metadata.toJSON())) {
    for (const v of values) h.append(k, Buffer.isBuffer(v) ? v.toString('base64') : v);
  }
  return findTrailerError(h);
}
