import { afterEach, describe, expect, it } from 'vitest';
import { mikroOrmOptions, openDatabase, type Database } from '../../src/identity/persistence/database.js';
import { migrationsList } from '../../src/identity/persistence/migrations/index.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createEmptyTestDatabase, createTestDatabase, type EmptyTestDatabase } from '../helpers/database.js';

describe('openDatabase and migrations', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function empty(): Promise<EmptyTestDatabase> {
    const t = await createEmptyTestDatabase();
    cleanup.push(() => t.drop());
    return t;
  }
  async function open(url: string): Promise<Database> {
    const db = await openDatabase({ databaseUrl: url, dataDir: '/nonexistent', poolMax: 2, logger: silentLogger });
    cleanup.push(() => db.close());
    return db;
  }

  it('applies every migration to a fresh database, and nothing on the next open', async () => {
    const t = await empty();
    const first = await open(t.url);
    expect(first.embedded).toBe(false);
    expect(first.appliedMigrations).toEqual(migrationsList.map((m) => m.name));
    const tables = await first.orm.em
      .getConnection()
      .execute<{ table_name: string }[]>(`select table_name from information_schema.tables where table_schema = 'public' order by 1`);
    expect(tables.map((r) => r.table_name)).toEqual(
      expect.arrayContaining(['mikro_orm_migrations', 'outbox', 'refresh_tokens', 'sessions', 'signing_keys', 'users']),
    );
    const [ext] = await first.orm.em.getConnection().execute<{ n: string }[]>(`select count(*)::text as n from pg_extension where extname = 'citext'`);
    expect(ext?.n).toBe('1');
    await first.close();

    const second = await open(t.url);
    expect(second.appliedMigrations).toEqual([]);
  });

  it('lets replicas opening together migrate exactly once', async () => {
    const t = await empty();
    const dbs = await Promise.all([open(t.url), open(t.url), open(t.url)]);
    const applied = dbs.map((d) => d.appliedMigrations.length).sort();
    expect(applied).toEqual([0, 0, migrationsList.length]);
  });

  it('pings an open database and reports a closed one as unavailable', async () => {
    const { db, drop } = await createTestDatabase();
    cleanup.push(drop);
    await expect(db.ping()).resolves.toBeUndefined();
    await db.close();
    await expect(db.ping()).rejects.toMatchObject({ kind: 'unavailable', id: 'ERR_DATABASE_UNAVAILABLE' });
  });

  it('fails to open with an unreachable server instead of hanging', async () => {
    await expect(
      openDatabase({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', dataDir: '/nonexistent', poolMax: 1, logger: silentLogger }),
    ).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  it('passes a unix-socket folder from ?host= as the host option', () => {
    const opts = mikroOrmOptions('postgres://latch@localhost/latch?host=/var/run/postgresql', 3, silentLogger);
    expect(opts.host).toBe('/var/run/postgresql');
    expect(opts.port).toBe(5432);
    expect(opts.pool?.max).toBe(3);
  });
});
