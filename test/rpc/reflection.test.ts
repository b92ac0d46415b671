import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/identity/rpc/transports/grpc-server.js';
import { createMetrics } from '../../src/identity/rpc/pipeline/metrics.js';
import { wrapService } from '../../src/identity/rpc/pipeline/wrap-service.js';
import { authImpl, captureLogs, fakeAuth } from './fakes.js';

const run = promisify(execFile);
const buf = new URL('../../node_modules/.bin/buf', import.meta.url).pathname;
const logs = captureLogs();

/**
 * Reflection describes every service the gRPC port serves, as grpc-go does: the health service
 * and the reflection services too, so reflection-driven clients can call grpc.health.v1.Health.
 */
describe('server reflection describes the health and reflection services', () => {
  let serving = true;
  let g: RunningGrpcServer;
  const url = () => `http://127.0.0.1:${g.port}`;
  const curl = (...args: string[]) => run(buf, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args]);

  beforeAll(async () => {
    const pipeline = { auth: fakeAuth, logger: logs.logger, metrics: createMetrics({ defaultMetrics: false }), trustedProxies: [] };
    g = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      services: [{ service: AuthService, impl: wrapService(AuthService, authImpl, pipeline) }],
      logger: logs.logger,
      health: { isServing: () => serving },
      healthPollMs: 20,
    });
  });
  afterAll(() => g?.stop(500));

  it.each(['grpc-v1', 'grpc-v1alpha'])('lists grpc.health.v1.Health and the reflection services over %s', async (protocol) => {
    const { stdout } = await curl('--reflect-protocol', protocol, '--list-services', url());
    const listed = stdout.trim().split('\n');
    expect(listed).toContain('grpc.health.v1.Health');
    expect(listed).toContain('grpc.reflection.v1.ServerReflection');
    expect(listed).toContain('grpc.reflection.v1alpha.ServerReflection');
    expect(listed).toContain('identity.v1.AuthService');
  });

  it('resolves every listed method, ours and the built-in ones', async () => {
    const { stdout } = await curl('--list-methods', url());
    expect(stdout).toContain('grpc.health.v1.Health/Check');
    expect(stdout).toContain('grpc.health.v1.Health/Watch');
    expect(stdout).toContain('grpc.reflection.v1.ServerReflection/ServerReflectionInfo');
    expect(stdout).toContain('identity.v1.AuthService/Login');
  });

  it('calls grpc.health.v1.Health/Check through reflection, for the server and for one service', async () => {
    const overall = await curl(`${url()}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(overall.stdout)).toEqual({ status: 'SERVING' });
    const one = await curl('-d', '{"service":"identity.v1.AuthService"}', `${url()}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(one.stdout)).toEqual({ status: 'SERVING' });

    serving = false;
    try {
      await expect.poll(async () => JSON.parse((await curl(`${url()}/grpc.health.v1.Health/Check`)).stdout).status).toBe('NOT_SERVING');
    } finally {
      serving = true;
    }
  });
});
