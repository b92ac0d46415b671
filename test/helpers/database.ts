import { randomBytes } from 'node:crypto';
import { knex } from '@mikro-orm/postgresql';
import { silentLogger } from '../../src/shared/logger.js';
import { identityEntities } from '../../src/identity/app.js';
import { openDatabase, type Database } from '../../src/identity/persistence/database.js';
import { services } from './services.js';

export interface EmptyTestDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface TestDatabase extends EmptyTestDatabase {
  /** Opened with openDatabase, so fully migrated. */
  db: Database;
}

/** A fresh, uniquely named database on the test server; `drop()` removes it. */
export async function createEmptyTestDatabase(): Promise<EmptyTestDatabase> {
  const adminUrl = services().postgresAdminUrl;
  const name = `latch_t_${randomBytes(6).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.raw(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop: () => (dropped ??= withAdmin(adminUrl, (admin) => admin.raw(`drop database if exists ${name} with (force)`)).then(() => undefined)),
  };
}

/** A fresh database with the schema applied through openDatabase. */
export async function createTestDatabase(opts: { poolMax?: number } = {}): Promise<TestDatabase> {
  const empty = await createEmptyTestDatabase();
  let db: Database;
  try {
    db = await openDatabase({ databaseUrl: empty.url, dataDir: '/nonexistent', poolMax: opts.poolMax ?? 4, logger: silentLogger, entities: identityEntities });
  } catch (e) {
    await empty.drop();
    throw e;
  }
  let dropped: Promise<void> | undefined;
  return {
    url: empty.url,
    db,
    drop: () =>
      (dropped ??= (async () => {
        try {
          await db.close();
        } finally {
          await empty.drop();
        }
      })()),
  };
}

async function withAdmin<T>(url: string, fn: (admin: ReturnType<typeof knex>) => Promise<T>): Promise<T> {
  const admin = knex({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  try {
    return await fn(admin);
  } finally {
    await admin.destroy();
  }
}
