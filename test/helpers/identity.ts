import { mkdtemp, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { Writable } from 'node:stream';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createClient, type Client, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { AdminService } from '../../src/gen/identity/v1/admin_pb.js';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService } from '../../src/gen/identity/v1/introspection_pb.js';
import { startIdentity, type IdentityApp } from '../../src/identity/app.js';
import type { Clock } from '../../src/shared/clock.js';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { capturingLogger, deleteStream, randomStream } from '../events/support.js';
import { createEmptyTestDatabase } from './database.js';
import { services } from './services.js';

export interface Clients {
  auth: Client<typeof AuthService>;
  introspection: Client<typeof TokenIntrospectionService>;
  admin: Client<typeof AdminService>;
}

export interface TestIdentity {
  app: IdentityApp;
  config: Config;
  /** gRPC (HTTP/2) against the grpc-js listener. */
  grpc: Clients;
  /** Connect JSON over HTTP/1.1 against the connect-node listener. */
  connect: Clients;
  /** gRPC-Web over HTTP/1.1 against the connect-node listener. */
  web: Clients;
  introspectionSecret: string;
  databaseUrl: string;
  httpUrl: string;
  grpcUrl: string;
  /** /metrics, /healthz, /readyz (loopback). */
  opsUrl: string;
  logs(): string;
  /** What the in-process mailer printed (no NATS_URL, no SMTP_URL). */
  mailOutput(): string;
  stop(): Promise<void>;
}

export interface TestIdentityOptions {
  env?: Record<string, string>;
  /** Share a database with another instance (a second replica). */
  databaseUrl?: string;
  /** Use Redis for rate limits (default: when reachable). */
  redis?: boolean;
  /** NATS: false for in-process events; a URL + stream to share with another instance. */
  nats?: false | { url: string; streamName: string; subjectPrefix: string };
  clock?: Clock;
}

export const TEST_PASSWORD = 'violet-harbour-quietly-1923';

export function uniqueEmail(tag = 'user'): string {
  return `${tag}-${randomBytes(5).toString('hex')}@example.test`;
}

export function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

/** The whole identity service on ephemeral ports, against a fresh database. */
export async function startTestIdentity(opts: TestIdentityOptions = {}): Promise<TestIdentity> {
  const s = services();
  const owned = opts.databaseUrl ? undefined : await createEmptyTestDatabase();
  const databaseUrl = opts.databaseUrl ?? owned!.url;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'latch-app-'));
  const introspectionSecret = randomBytes(32).toString('base64url');
  let nats = opts.nats;
  let ownStream: string | undefined;
  if (nats === undefined && s.natsUrl) {
    const r = randomStream();
    nats = { url: s.natsUrl, ...r };
    ownStream = r.streamName;
  }
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'debug',
    GRPC_PORT: '0',
    HTTP_PORT: '0',
    OPS_PORT: '0',
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: '8',
    // Replicas of one deployment share the key: derive it from the database they share.
    SECRET_ENCRYPTION_KEY: createHash('sha256').update(`test-key:${databaseUrl}`).digest('base64'),
    INTROSPECTION_CLIENTS: `tests:${introspectionSecret}`,
    CORS_ORIGINS: 'https://app.example.test',
    SHUTDOWN_GRACE_MS: '2000',
    // Every test client signs up from 127.0.0.1; tests of the sign-up limit set their own.
    SIGNUP_MAX_PER_IP: '100000',
    // Tests have no internet: breach-check tests point HIBP_URL at a local fake and turn it on.
    HIBP_ENABLED: 'false',
    // Replicas of one deployment share counters; separate test deployments never do.
    ...(opts.redis !== false && s.redisUrl ? { REDIS_URL: s.redisUrl, REDIS_KEY_PREFIX: `latch_t_${createHash('sha256').update(databaseUrl).digest('hex').slice(0, 12)}` } : {}),
    ...(nats ? { NATS_URL: nats.url, EVENTS_STREAM: nats.streamName, EVENTS_SUBJECT_PREFIX: nats.subjectPrefix } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const captured = capturingLogger('debug');
  const mailChunks: string[] = [];
  const mailOutput = new Writable({
    write(chunk, _enc, cb) {
      mailChunks.push(String(chunk));
      cb();
    },
  });
  let app: IdentityApp;
  try {
    app = await startIdentity(config, { logger: captured.logger, clock: opts.clock, mailOutput });
  } catch (err) {
    if (ownStream && nats) await deleteStream(nats.url, ownStream).catch(() => undefined);
    await owned?.drop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const grpcUrl = `http://127.0.0.1:${app.grpcPort}`;
  const httpUrl = `http://127.0.0.1:${app.httpPort}`;
  const clients = (t: Transport): Clients => ({
    auth: createClient(AuthService, t),
    introspection: createClient(TokenIntrospectionService, t),
    admin: createClient(AdminService, t),
  });
  const interceptors: Interceptor[] = [];
  let stopped: Promise<void> | undefined;
  return {
    app,
    config,
    grpc: clients(createGrpcTransport({ baseUrl: grpcUrl, interceptors })),
    connect: clients(createConnectTransport({ baseUrl: httpUrl, httpVersion: '1.1', interceptors })),
    web: clients(createGrpcWebTransport({ baseUrl: httpUrl, httpVersion: '1.1', interceptors })),
    introspectionSecret,
    databaseUrl,
    httpUrl,
    grpcUrl,
    opsUrl: `http://127.0.0.1:${app.opsPort}`,
    logs: captured.text,
    mailOutput: () => mailChunks.join(''),
    stop: () =>
      (stopped ??= (async () => {
        await app.stop();
        if (config.REDIS_URL) await deleteRedisKeys(config.REDIS_URL, `${config.REDIS_KEY_PREFIX}:*`);
        if (ownStream && nats) await deleteStream(nats.url, ownStream).catch(() => undefined);
        await owned?.drop();
        await rm(dataDir, { recursive: true, force: true });
      })()),
  };
}

async function deleteRedisKeys(url: string, pattern: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Registers and signs in a fresh user over the given clients. */
export async function signUp(c: Clients, email = uniqueEmail(), password = TEST_PASSWORD) {
  await c.auth.register({ email, password });
  const res = await c.auth.login({ email, password });
  if (res.result.case !== 'session') throw new Error('expected a session');
  return { email, password, session: res.result.value };
}
