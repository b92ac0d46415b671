import { Migrator } from '@mikro-orm/migrations';
import { knex, MikroORM, type Options } from '@mikro-orm/postgresql';
import { unavailable } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { entities } from './entities.js';
import { migrationsList } from './migrations/index.js';

export interface Database {
  orm: MikroORM;
  url: string;
  embedded: boolean;
  /** Names of the migrations this open applied (empty when the schema was already current). */
  appliedMigrations: readonly string[];
  /** `select 1` within a short deadline; rejects with an `unavailable` LatchError. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Unset: run the embedded PostgreSQL under `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  poolMax: number;
  logger: Logger;
  /** Log every SQL statement at debug level. */
  debug?: boolean;
}

/** Any session-level key works; this one only has to be the same for every Latch process. */
const MIGRATION_LOCK_KEY = 0x6c61746368; // "latch"

export function mikroOrmOptions(url: string, poolMax: number, logger: Logger, debug = false): Options {
  const parsed = new URL(url);
  // MikroORM ignores `?host=` in clientUrl, which is how libpq URLs name a unix-socket folder.
  const socketHost = parsed.searchParams.get('host') ?? undefined;
  return {
    entities,
    clientUrl: url,
    ...(socketHost !== undefined ? { host: socketHost } : {}),
    ...(parsed.port === '' ? { port: 5432 } : {}),
    extensions: [Migrator],
    migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false },
    discovery: { warnWhenNoEntities: false },
    pool: { min: 0, max: poolMax },
    allowGlobalContext: false,
    ensureDatabase: false,
    debug,
    logger: (message: string) => logger.debug({ component: 'orm' }, message),
  };
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const embeddedServer =
    opts.databaseUrl === undefined ? await startEmbeddedPostgres({ dataDir: opts.dataDir, logger: opts.logger }) : undefined;
  const url = opts.databaseUrl ?? embeddedServer!.url;
  let orm: MikroORM | undefined;
  try {
    orm = await MikroORM.init(mikroOrmOptions(url, opts.poolMax, opts.logger, opts.debug));
    const appliedMigrations = await migrate(orm, url, opts.logger);
    const ready = orm;
    let closed: Promise<void> | undefined;
    return {
      orm: ready,
      url,
      embedded: embeddedServer !== undefined,
      appliedMigrations,
      ping: (timeoutMs = 2000) => ping(ready, timeoutMs),
      close: () =>
        (closed ??= (async () => {
          try {
            await ready.close(true);
          } finally {
            await embeddedServer?.stop();
          }
        })()),
    };
  } catch (e) {
    await orm?.close(true).catch(() => undefined);
    await embeddedServer?.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * Applies pending migrations under a transaction-scoped advisory lock held on a separate
 * connection, so replicas starting together migrate one at a time (the others then find
 * nothing pending) whatever the pool size.
 */
async function migrate(orm: MikroORM, url: string, logger: Logger): Promise<string[]> {
  const conn = mikroOrmOptions(url, 1, logger);
  const parsed = new URL(url);
  const lockConn = knex({
    client: 'pg',
    connection: {
      host: conn.host ?? decodeURIComponent(parsed.hostname),
      port: parsed.port === '' ? 5432 : Number(parsed.port),
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      database: decodeURIComponent(parsed.pathname.replace(/^\//, '')),
    },
    pool: { min: 0, max: 1 },
  });
  try {
    return await lockConn.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
      const applied = await orm.getMigrator().up();
      const names = applied.map((m) => m.name);
      if (names.length > 0) logger.info({ migrations: names }, 'applied database migrations');
      return names;
    });
  } finally {
    await lockConn.destroy();
  }
}

async function ping(orm: MikroORM, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable('ERR_DATABASE_UNAVAILABLE', 'database did not answer in time')), timeoutMs);
  });
  try {
    await Promise.race([orm.em.getConnection().execute('select 1'), deadline]);
  } catch (e) {
    if (e instanceof Error && e.name === 'LatchError') throw e;
    throw unavailable('ERR_DATABASE_UNAVAILABLE', 'database is unreachable', e);
  } finally {
    clearTimeout(timer);
  }
}
