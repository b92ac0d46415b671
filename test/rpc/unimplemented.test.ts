import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { createMetrics } from '../../src/identity/rpc/pipeline/metrics.js';
import { wrapService } from '../../src/identity/rpc/pipeline/wrap-service.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/identity/rpc/transports/grpc-server.js';
import { startHttpServer, type RunningHttpServer } from '../../src/identity/rpc/transports/http-server.js';
import { authImpl, captureLogs, fakeAuth } from './fakes.js';
import { grpcCall, grpcClient } from './grpc-client.js';

const logs = captureLogs();

/** A declared method that is not served answers UNIMPLEMENTED with one id, whichever way it is reached. */
describe('unimplemented methods', () => {
  let g: RunningGrpcServer;
  let bare: RunningGrpcServer;
  let h: RunningHttpServer;
  beforeAll(async () => {
    const pipeline = { auth: fakeAuth, logger: logs.logger, metrics: createMetrics({ defaultMetrics: false }), trustedProxies: [] };
    // authImpl leaves RequestPasswordReset out, as a handler set without that flow would.
    const services = [{ service: AuthService, impl: wrapService(AuthService, authImpl, pipeline) }];
    const health = { isServing: () => true };
    [g, h, bare] = await Promise.all([
      startGrpcServer({ host: '127.0.0.1', port: 0, services, logger: logs.logger, health, reflection: false }),
      startHttpServer({ host: '127.0.0.1', port: 0, services, corsOrigins: [], logger: logs.logger, ready: async () => true, jwks: () => '{"keys":[]}' }),
      // Mounted without the pipeline and without any implementation.
      startGrpcServer({ host: '127.0.0.1', port: 0, services: [{ service: AuthService, impl: {} }], logger: logs.logger, health, reflection: false }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([g?.stop(500), h?.stop(500), bare?.stop(500)]);
  });

  it.each([
    ['the pipeline on gRPC', () => g.port],
    ['a method mounted without implementation on gRPC', () => bare.port],
  ])('%s: UNIMPLEMENTED, ERR_UNIMPLEMENTED', async (_, port) => {
    const client = grpcClient(AuthService, port());
    const r = await grpcCall(client, 'requestPasswordReset', { email: 'a@example.com' });
    client.close();
    expect(r.err?.code).toBe(Code.Unimplemented);
    expect(r.err?.details).toBe('RequestPasswordReset is not implemented');
    expect(r.trailers.get('latch-error-id')).toEqual(['ERR_UNIMPLEMENTED']);
  });

  it('the pipeline on Connect: UNIMPLEMENTED, ERR_UNIMPLEMENTED', async () => {
    const auth = createClient(AuthService, createConnectTransport({ baseUrl: `http://127.0.0.1:${h.port}`, httpVersion: '1.1' }));
    const err = await auth.requestPasswordReset({ email: 'a@example.com' }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.Unimplemented);
    expect(err?.metadata.get('latch-error-id')).toBe('ERR_UNIMPLEMENTED');
  });
});
