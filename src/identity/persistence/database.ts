import { Migrator } from '@mikro-orm/migrations';
import { knex, MikroORM, type Options } from '@mikro-orm/postgresql';
import { unavailable } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { startEmbeddedPostgres } from './embedded/embedded-postgres.js';
import { migrationsList } from './migrations/index.js';
import { releaseAsyncContextWhenIdle } from './async-context.js';

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

/**
 * Every wait on the database is bounded (docs/security.md I5), so a server that accepts connections but
 * never answers (frozen primary, partition) gives UNAVAILABLE instead of a hang.
 */
export interface DatabaseWaits {
  /** Opening a connection: TCP connect plus the startup handshake. */
  connectTimeoutMs: number;
  /** Waiting for a pooled connection when all are busy. */
  acquireTimeoutMs: number;
  /** One statement: PostgreSQL cancels it (statement_timeout) and the client gives up shortly after. */
  statementTimeoutMs: number;
}

export const DEFAULT_DATABASE_WAITS: DatabaseWaits = { connectTimeoutMs: 3000, acquireTimeoutMs: 3000, statementTimeoutMs: 5000 };

/** The entity definitions the ORM maps; the composition root collects them from the domains. */
export type EntityList = NonNullable<Options['entities']>;

export interface OpenDatabaseOptions {
  /** Every entity the service reads or writes through the entity manager. Default none. */
  entities?: EntityList;
  /** Unset: run the embedded PostgreSQL under `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  poolMax: number;
  logger: Logger;
  waits?: Partial<DatabaseWaits>;
  /** Log every SQL statement at debug level. */
  debug?: boolean;
}

/** Any session-level key works; this one only has to be the same for every Latch process. */
const MIGRATION_LOCK_KEY = 0x6c61746368; // "latch"

/**
 * The server cancels a slow statement itself (a clean error, the connection stays usable); the
 * client's own timer fires only when no answer comes at all, a little later.
 */
const CLIENT_TIMEOUT_MARGIN_MS = 500;
/** pg's message when query_timeout fires. */
const CLIENT_QUERY_TIMEOUT = 'Query read timeout';

/** The slice of pg's Client that the pool hooks below touch. */
interface PgClient {
  query(...args: unknown[]): unknown;
  end(): Promise<void>;
}

/**
 * pg's query_timeout only fails the caller: the connection keeps waiting for the statement's
 * answer, so whatever is queued behind it (its transaction's ROLLBACK, the next borrower's
 * statements) would wait as well, and a connection to a vanished server would stay in the pool.
 * Once the client gives up on a statement the connection is closed: queued statements fail at
 * once, knex marks the connection disposed and the pool opens a new one when the server is back.
 */
function closeOnClientTimeout(client: PgClient, retired: WeakSet<PgClient>): void {
  const query = client.query;
  const retire = (err: unknown) => {
    if (!(err instanceof Error) || err.message !== CLIENT_QUERY_TIMEOUT) return;
    // Marked at once: the connection goes back to the pool before its socket has finished closing.
    retired.add(client);
    client.end().catch(() => undefined);
  };
  client.query = function (this: PgClient, ...args: unknown[]) {
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (err: unknown, res: unknown) => {
        retire(err);
        (callback as (e: unknown, r: unknown) => void)(err, res);
      };
    }
    const result = query.apply(this, args);
    if (result instanceof Promise) result.catch(retire);
    return result;
  };
}

export function mikroOrmOptions(
  url: string,
  poolMax: number,
  logger: Logger,
  debug = false,
  waits: Partial<DatabaseWaits> = {},
  entities: EntityList = [],
): Options {
  const { connectTimeoutMs, acquireTimeoutMs, statementTimeoutMs } = { ...DEFAULT_DATABASE_WAITS, ...waits };
  const retired = new WeakSet<PgClient>();
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
    pool: {
      min: 0,
      max: poolMax,
      acquireTimeoutMillis: acquireTimeoutMs,
      afterCreate: (conn: PgClient, done: (err: Error | null, conn: PgClient) => void) => {
        closeOnClientTimeout(conn, retired);
        done(null, conn);
      },
      // knex runs this on every acquire (its typings omit it); a connection that fails is destroyed.
      validate: (conn: PgClient) => !retired.has(conn),
    } as Options['pool'],
    // Merged by MikroORM into knex's `connection`, which knex hands to pg's Client as is.
    driverOptions: {
      connection: {
        connectionTimeoutMillis: connectTimeoutMs,
        ...(statementTimeoutMs > 0
          ? { statement_timeout: statementTimeoutMs, query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS }
          : {}),
        // Idle pooled connections to a host that vanished are noticed by the kernel, not at next use.
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      },
      // knex writes to the console otherwise (e.g. "Connection Error: ..." for each dropped connection).
      log: {
        warn: (m: unknown) => logger.warn({ component: 'knex' }, String(m)),
        error: (m: unknown) => logger.error({ component: 'knex' }, String(m)),
        deprecate: (m: unknown) => logger.debug({ component: 'knex' }, String(m)),
        debug: (m: unknown) => logger.debug({ component: 'knex' }, String(m)),
      },
    },
    allowGlobalContext: false,
    ensureDatabase: false,
    debug,
    logger: (message: string) => logger.debug({ component: 'orm' }, message),
  };
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  // Before the ORM's first run: its async context is then on only while database work is in flight.
  releaseAsyncContextWhenIdle();
  const embeddedServer =
    opts.databaseUrl === undefined ? await startEmbeddedPostgres({ dataDir: opts.dataDir, logger: opts.logger }) : undefined;
  const url = opts.databaseUrl ?? embeddedServer!.url;
  let orm: MikroORM | undefined;
  try {
    const appliedMigrations = await migrate(url, opts);
    orm = await MikroORM.init(mikroOrmOptions(url, opts.poolMax, opts.logger, opts.debug, opts.waits, opts.entities));
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
 * nothing pending) whatever the pool size. Connecting is bounded as always; statements are not:
 * a migration may rightly outlast a request's statement bound, and so may waiting for the lock
 * while another replica migrates.
 */
async function migrate(url: string, opts: OpenDatabaseOptions): Promise<string[]> {
  const { logger } = opts;
  const waits = { ...opts.waits, statementTimeoutMs: 0 };
  const conn = mikroOrmOptions(url, opts.poolMax, logger, opts.debug, waits);
  const parsed = new URL(url);
  const lockConn = knex({
    client: 'pg',
    connection: {
      host: conn.host ?? decodeURIComponent(parsed.hostname),
      port: parsed.port === '' ? 5432 : Number(parsed.port),
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      database: decodeURIComponent(parsed.pathname.replace(/^\//, '')),
      connectionTimeoutMillis: opts.waits?.connectTimeoutMs ?? DEFAULT_DATABASE_WAITS.connectTimeoutMs,
    },
    pool: { min: 0, max: 1 },
  });
  const orm = await MikroORM.init(conn).catch(async (e: unknown) => {
    await lockConn.destroy();
    throw e;
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
    await orm.close(true).catch(() => undefined);
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
