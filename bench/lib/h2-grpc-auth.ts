import * as http2 from 'node:http2';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  LoginRequestSchema,
  LoginResponseSchema,
  RefreshRequestSchema,
  RefreshResponseSchema,
} from '../../src/gen/identity/v1/auth_pb.js';

type LoginResponse = MessageShape<typeof LoginResponseSchema>;
type RefreshResponse = MessageShape<typeof RefreshResponseSchema>;

export interface AuthLoadClient {
  login(email: string, password: string): Promise<LoginResponse>;
  refresh(refreshToken: string): Promise<RefreshResponse>;
  close(): void;
}

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE, HTTP2_HEADER_USER_AGENT } = http2.constants;

/**
 * AuthService Login and Refresh as gRPC unary calls over one node:http2 session: the
 * length-prefixed protobuf-es encoding of the request, grpc-status read from the trailers (or
 * from a trailers-only answer). A load generator for the rows that cannot use h2load (every
 * Refresh presents the token the previous answer returned). It costs the cores it shares with
 * the service less per call than a @grpc/grpc-js client (no channel, load-balancing or
 * interceptor machinery), and sends what any gRPC client sends.
 */
export function h2GrpcAuth(grpcUrl: string): AuthLoadClient {
  const session = http2.connect(grpcUrl);
  // A broken session fails the calls in flight; the error itself must not crash the bench.
  session.on('error', () => {});
  const unary = <I extends DescMessage, O extends DescMessage>(path: string, input: I, output: O, init: object) =>
    new Promise<MessageShape<O>>((resolve, reject) => {
      const body = toBinary(input, create(input, init as never));
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      const stream = session.request({
        [HTTP2_HEADER_METHOD]: 'POST',
        [HTTP2_HEADER_PATH]: path,
        [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
        [HTTP2_HEADER_TE]: 'trailers',
        [HTTP2_HEADER_USER_AGENT]: 'latch-bench',
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message: string | undefined;
      const grpcStatus = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          message = h['grpc-message'] === undefined ? undefined : decodeURIComponent(String(h['grpc-message']));
        }
      };
      stream.on('response', grpcStatus);
      stream.on('trailers', grpcStatus);
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', reject);
      stream.on('close', () => {
        if (status !== '0') {
          reject(new Error(`${path}: grpc-status ${status ?? 'missing'}${message ? ` (${message})` : ''}`));
          return;
        }
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (all.length < 5 || all[0] !== 0 || all.readUInt32BE(1) !== all.length - 5) {
          reject(new Error(`${path}: expected one uncompressed message, got ${all.length} bytes`));
          return;
        }
        try {
          resolve(fromBinary(output, all.subarray(5)));
        } catch (e) {
          reject(e as Error);
        }
      });
      stream.end(frame);
    });
  return {
    login: (email, password) => unary('/identity.v1.AuthService/Login', LoginRequestSchema, LoginResponseSchema, { email, password }),
    refresh: (refreshToken) => unary('/identity.v1.AuthService/Refresh', RefreshRequestSchema, RefreshResponseSchema, { refreshToken }),
    close: () => session.close(),
  };
}
