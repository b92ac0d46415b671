import http from 'node:http';
import { fromBinary } from '@bufbuild/protobuf';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { IntrospectResponseSchema, TokenIntrospectionService } from '../../src/gen/identity/v1/introspection_pb.js';

/**
 * Floor (c): a bare connect-node server in its own process (HTTP/1.1, connectNodeAdapter on
 * node:http) that answers TokenIntrospectionService.Introspect with one prebuilt response
 * message. connect-node still decodes each request and encodes the answer (JSON for a Connect
 * JSON call), which is the least any Connect server does per call.
 *
 * argv[2]: the IntrospectResponse as hex (encoded once by the bench with toBinary).
 * Prints `{"port":N}` on stdout once listening; stops on SIGTERM.
 */

const response = fromBinary(IntrospectResponseSchema, Buffer.from(process.argv[2] ?? '', 'hex'));
const handler = connectNodeAdapter({
  routes: (router) => {
    router.rpc(TokenIntrospectionService.method.introspect, () => response);
  },
});
const server = http.createServer(handler);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
