import * as grpc from '@grpc/grpc-js';
import type { MessageShape } from '@bufbuild/protobuf';
import { AuthService, type LoginResponseSchema, type RefreshResponseSchema } from '../../src/gen/identity/v1/auth_pb.js';
import { grpcServiceDefinition } from '../../src/identity/rpc/transports/grpc-adapter.js';

type RefreshResponse = MessageShape<typeof RefreshResponseSchema>;
type LoginResponse = MessageShape<typeof LoginResponseSchema>;
type Unary<R> = (req: unknown, cb: (err: grpc.ServiceError | null, res: R) => void) => void;

export interface GrpcJsAuth {
  login(email: string, password: string): Promise<LoginResponse>;
  refresh(refreshToken: string): Promise<RefreshResponse>;
  close(): void;
}

/**
 * AuthService Login and Refresh through a @grpc/grpc-js client (the service's own method
 * definitions, so the same protobuf encoding): a load generator that costs the shared cores less
 * per call than connect-node's gRPC client.
 */
export function grpcJsAuth(grpcUrl: string): GrpcJsAuth {
  const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(AuthService), 'AuthService');
  const client = new Client(new URL(grpcUrl).host, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    login: Unary<LoginResponse>;
    refresh: Unary<RefreshResponse>;
  };
  const call = <R>(fn: Unary<R>, req: unknown) => new Promise<R>((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));
  return {
    login: (email, password) => call(client.login, { email, password }),
    refresh: (refreshToken) => call(client.refresh, { refreshToken }),
    close: () => client.close(),
  };
}
