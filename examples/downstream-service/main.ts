import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { LatchAuth } from '../../src/sdk/index.js';
import { startDownstream } from './server.js';

/**
 * The example service, configured from the environment:
 *   LATCH_GRPC_URL                 Latch's gRPC address (default http://localhost:50051)
 *   LATCH_INTROSPECTION_SECRET_FILE the caller credential (default data/secrets/introspection-client)
 *   NATS_URL                       optional: drop cached answers on Latch's sessions_revoked broadcast
 *   EVENTS_SUBJECT_PREFIX          Latch's subject prefix (default identity.events)
 *   PORT / GRPC_PORT               this service's ports (default 9080 / 9051)
 */
const env = process.env;
const credential = readFileSync(env.LATCH_INTROSPECTION_SECRET_FILE ?? 'data/secrets/introspection-client', 'utf8').trim();
const nc = env.NATS_URL ? await connect({ servers: env.NATS_URL }) : undefined;
const auth = await LatchAuth.create({
  introspection: { baseUrl: env.LATCH_GRPC_URL ?? 'http://localhost:50051', credential },
  revocation: nc ? { connection: nc, subjectPrefix: env.EVENTS_SUBJECT_PREFIX } : undefined,
});
const svc = await startDownstream(auth, { http: Number(env.PORT ?? 9080), grpc: Number(env.GRPC_PORT ?? 9051), host: env.HOST ?? '127.0.0.1' });
process.stdout.write(`downstream service: Connect + HTTP on ${svc.httpUrl}, gRPC on ${svc.grpcUrl}\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (async () => {
      await svc.close();
      await auth.close();
      await nc?.close();
      process.exit(0);
    })();
  });
}
