/**
 * The SDK bench's server (bench/sdk.ts): a no-op Connect handler on node:http (HTTP/1.1), in a
 * process of its own. SDK_MODE=open: unprotected; warm: protected by the SDK with its default
 * settings. Prints {"port":N} once listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { GreeterService } from '../examples/downstream-service/greeter.js';
import { LatchAuth, latchInterceptor } from '../src/sdk/index.js';

const mode = process.env.SDK_MODE ?? 'open';
const interceptors: Interceptor[] = [];
if (mode !== 'open') {
  const auth = await LatchAuth.create({
    introspection: { baseUrl: process.env.LATCH_GRPC_URL!, credential: process.env.LATCH_INTROSPECTION_SECRET! },
  });
  interceptors.push(latchInterceptor(auth));
}
const noop = () => ({});
const server = createServer(
  connectNodeAdapter({
    interceptors,
    routes: (router: ConnectRouter) => router.service(GreeterService, { hello: noop, adminHello: noop, secureHello: noop } as never),
  }),
);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
