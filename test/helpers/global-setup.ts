import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { knex } from '@mikro-orm/postgresql';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { silentLogger } from '../../src/shared/logger.js';
import { startEmbeddedPostgres } from '../../src/identity/persistence/embedded/embedded-postgres.js';
import type { ServiceUrls } from './services.js';

/**
 * Finds the backing services the integration suites need. In CI every one is required; locally a
 * missing PostgreSQL is replaced by an embedded one and missing Redis/NATS suites are skipped,
 * each announced with one line on stderr.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const ci = process.env.CI === 'true';
  const pgUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const natsUrl = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

  const [pgErr, redisErr, natsErr] = await Promise.all([probePostgres(pgUrl), probeRedis(redisUrl), probeNats(natsUrl)]);
  const missing = [
    pgErr && `PostgreSQL unreachable at ${redact(pgUrl)}: ${pgErr}`,
    redisErr && `Redis unreachable at ${redisUrl}: ${redisErr}`,
    natsErr && `NATS with JetStream unreachable at ${natsUrl}: ${natsErr}`,
  ].filter((m): m is string => typeof m === 'string');
  if (ci && missing.length > 0) {
    throw new Error(`CI=true and required test services are missing:\n  ${missing.join('\n  ')}`);
  }

  let teardown = async () => {};
  let postgresAdminUrl = pgUrl;
  if (pgErr) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'latch-test-pg-'));
    const server = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger });
    postgresAdminUrl = server.url;
    process.stderr.write(`[services] PostgreSQL unreachable at ${redact(pgUrl)} (${pgErr}): using an embedded server\n`);
    teardown = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  if (redisErr) process.stderr.write(`[services] Redis unreachable at ${redisUrl}: suites needing Redis are skipped\n`);
  if (natsErr) process.stderr.write(`[services] NATS unreachable at ${natsUrl} (${natsErr}): suites needing NATS are skipped\n`);

  const services: ServiceUrls = {
    postgresAdminUrl,
    ...(redisErr ? {} : { redisUrl }),
    ...(natsErr ? {} : { natsUrl }),
  };
  project.provide('services', services);
  return teardown;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message || e.name : String(e);
}

async function probePostgres(url: string): Promise<string | undefined> {
  const db = knex({ client: 'pg', connection: { connectionString: url, connectionTimeoutMillis: 2000 }, pool: { min: 0, max: 1 } });
  try {
    await db.raw('select 1');
    return undefined;
  } catch (e) {
    return reason(e);
  } finally {
    await db.destroy();
  }
}

async function probeRedis(url: string): Promise<string | undefined> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let lastError: unknown;
  redis.on('error', (e: unknown) => {
    lastError = e;
  });
  try {
    await redis.connect();
    const pong = await redis.ping();
    return pong === 'PONG' ? undefined : `unexpected PING reply ${pong}`;
  } catch (e) {
    // ioredis rejects with "Connection is closed"; the socket error says why.
    return reason(lastError ?? e);
  } finally {
    redis.disconnect();
  }
}

async function probeNats(url: string): Promise<string | undefined> {
  let nc;
  try {
    nc = await connect({ servers: url, timeout: 1000, reconnect: false });
  } catch (e) {
    return reason(e);
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    await jsm.getAccountInfo();
    return undefined;
  } catch (e) {
    return `JetStream is not enabled (${reason(e)})`;
  } finally {
    await nc.close();
  }
}
