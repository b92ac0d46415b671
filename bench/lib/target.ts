import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { knex } from '@mikro-orm/postgresql';
import { Redis } from 'ioredis';
import { freePort } from '../../src/identity/persistence/embedded/embedded-postgres-host.js';

/**
 * The system under test: the identity service as its own process (`npm start`'s entry point),
 * against a throw-away database and, when reachable, the local Redis and NATS.
 */

export const POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = 'redis://127.0.0.1:6379';
const NATS_URL = 'nats://127.0.0.1:4222';

export interface Backends {
  database: 'external' | 'embedded';
  databaseUrl?: string;
  dataDir: string;
  redisUrl?: string;
  /** Keeps the run's rate-limit keys apart from anyone else's on the shared Redis. */
  redisKeyPrefix: string;
  nats?: { url: string; stream: string; subjectPrefix: string };
  cleanup(): Promise<void>;
}

export async function prepareBackends(log: (msg: string) => void): Promise<Backends> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'latch-bench-'));
  const tag = randomBytes(5).toString('hex');
  let databaseUrl: string | undefined;
  let dbName: string | undefined;
  try {
    dbName = `latch_bench_${tag}`;
    await withAdmin((admin) => admin.raw(`create database ${dbName}`));
    const u = new URL(POSTGRES_ADMIN_URL);
    u.pathname = `/${dbName}`;
    databaseUrl = u.toString();
  } catch (err) {
    log(`local PostgreSQL unreachable (${(err as Error).message}); using the embedded one`);
    dbName = undefined;
  }
  const redisUrl = (await tcpOpen(6379)) ? REDIS_URL : undefined;
  const nats = (await jetStreamAvailable()) ? { url: NATS_URL, stream: `LATCH_BENCH_${tag.toUpperCase()}`, subjectPrefix: `latch_bench_${tag}.events` } : undefined;
  return {
    database: databaseUrl ? 'external' : 'embedded',
    databaseUrl,
    dataDir,
    redisUrl,
    redisKeyPrefix: `latch_bench_${tag}`,
    nats,
    async cleanup() {
      if (nats) await deleteStream(nats.url, nats.stream).catch((e) => log(`stream not deleted: ${(e as Error).message}`));
      if (redisUrl) await deleteKeys(redisUrl, `latch_bench_${tag}`).catch((e) => log(`redis keys not deleted: ${(e as Error).message}`));
      if (dbName) await withAdmin((a) => a.raw(`drop database if exists ${dbName} with (force)`)).catch((e) => log(`database not dropped: ${(e as Error).message}`));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ServiceProcess {
  grpcUrl: string;
  httpUrl: string;
  /** /metrics (loopback ops listener). */
  opsUrl: string;
  pid: number;
  /** The last 256 KiB the service wrote to stderr/stdout. */
  output(): string;
  /** Every log line at level error (50) or fatal (60), kept whatever the volume of output. */
  errorLines(): string[];
  stop(): Promise<void>;
}

const OUTPUT_TAIL = 256 * 1024;

/**
 * `env` overrides the defaults below; LOG_LEVEL is left unset unless given, so a run without it
 * measures the shipped default. `nodeArgs` go before the entry point (e.g. `--cpu-prof`).
 */
export async function startService(b: Backends, env: Record<string, string>, nodeArgs: string[] = []): Promise<ServiceProcess> {
  const [grpcPort, httpPort, opsPort] = [await freePort(), await freePort(), await freePort()];
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    NODE_ENV: 'production',
    // Required in production (where password-reset and verification links point); nothing in the bench follows one.
    PUBLIC_RESET_URL: 'https://latch.example.test/reset-password',
    PUBLIC_VERIFY_EMAIL_URL: 'https://latch.example.test/verify-email',
    BIND_ADDRESS: '127.0.0.1',
    GRPC_PORT: String(grpcPort),
    HTTP_PORT: String(httpPort),
    OPS_PORT: String(opsPort),
    DATA_DIR: b.dataDir,
    ...(b.databaseUrl ? { DATABASE_URL: b.databaseUrl } : {}),
    ...(b.redisUrl ? { REDIS_URL: b.redisUrl, REDIS_KEY_PREFIX: b.redisKeyPrefix } : {}),
    ...(b.nats ? { NATS_URL: b.nats.url, EVENTS_STREAM: b.nats.stream, EVENTS_SUBJECT_PREFIX: b.nats.subjectPrefix } : {}),
    ...env,
  };
  // Production refuses to start without these; without them the bench runs the development mode.
  if (!b.databaseUrl || !b.redisUrl || !b.nats) childEnv.NODE_ENV = 'development';
  // What `npm start` execs, without npm in between, so the pid below is the server itself.
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/identity/main.ts'], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Drained as a log collector would; only the tail and the error lines are kept.
  let output = '';
  let partial = '';
  const errors: string[] = [];
  const collect = (c: Buffer) => {
    const text = c.toString();
    output = (output + text).slice(-OUTPUT_TAIL);
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (/"level":(50|60)/.test(l)) errors.push(l);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => child.once('exit', (code) => ((exited = code), resolve())));
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`identity exited with ${exited} before ready:\n${output}`);
    const ok = await fetch(`${httpUrl}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`identity not ready after 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    grpcUrl: `http://127.0.0.1:${grpcPort}`,
    httpUrl,
    opsUrl: `http://127.0.0.1:${opsPort}`,
    pid: child.pid!,
    output: () => output,
    errorLines: () => errors.slice(),
    async stop() {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

async function withAdmin<T>(fn: (admin: ReturnType<typeof knex>) => Promise<T>): Promise<T> {
  const admin = knex({ client: 'pg', connection: { connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 }, pool: { min: 0, max: 1 } });
  try {
    return await fn(admin);
  } finally {
    await admin.destroy();
  }
}

async function jetStreamAvailable(): Promise<boolean> {
  if (!(await tcpOpen(4222))) return false;
  try {
    const nc = await connect({ servers: NATS_URL, reconnect: false, timeout: 2000 });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function deleteStream(url: string, stream: string): Promise<void> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    await (await jetstreamManager(nc)).streams.delete(stream);
  } finally {
    await nc.close();
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

