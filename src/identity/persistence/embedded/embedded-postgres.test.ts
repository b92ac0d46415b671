import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { knex, type Knex } from '@mikro-orm/postgresql';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../shared/logger.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.js';
import { freePort } from './embedded-postgres-host.js';

async function query<T>(url: string, sql: string, bindings: readonly Knex.RawBinding[] = []): Promise<T[]> {
  const db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  try {
    return ((await db.raw(sql, [...bindings])) as { rows: T[] }).rows;
  } finally {
    await db.destroy();
  }
}

describe('startEmbeddedPostgres', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'latch-pg-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }
  async function start(dataDir: string, port?: number): Promise<EmbeddedPostgres> {
    const pg = await startEmbeddedPostgres({ dataDir, port, logger: silentLogger });
    cleanup.push(() => pg.stop());
    return pg;
  }

  it('initialises once, serves the latch database, and keeps data across restarts', async () => {
    const dir = await tempDir();
    const first = await start(dir);
    expect(first.url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/latch$/);
    const [row] = await query<{ db: string }>(first.url, 'select current_database() as db');
    expect(row?.db).toBe('latch');
    await query(first.url, 'create table kept (v text)');
    await query(first.url, 'insert into kept values (?)', ['still here']);
    const initialisedAt = (await stat(path.join(dir, 'postgres', 'PG_VERSION'))).mtimeMs;
    await first.stop();

    const second = await start(dir);
    expect(await query<{ v: string }>(second.url, 'select v from kept')).toEqual([{ v: 'still here' }]);
    expect((await stat(path.join(dir, 'postgres', 'PG_VERSION'))).mtimeMs).toBe(initialisedAt);
    // Passwords are required: the same URL without the generated password is refused.
    await expect(query(second.url.replace(/:[^:@/]+@/, ':wrong@'), 'select 1')).rejects.toThrow(/password authentication failed/);
  });

  it('refuses a second start on a data dir that is in use', async () => {
    const dir = await tempDir();
    await start(dir);
    await expect(startEmbeddedPostgres({ dataDir: dir, logger: silentLogger })).rejects.toMatchObject({
      id: 'ERR_DATA_DIR_LOCKED',
      message: expect.stringContaining(`in use by process ${process.pid}`),
    });
  });

  it('reports why a fixed port could not be used', async () => {
    const dir = await tempDir();
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    await expect(start(dir, port)).rejects.toMatchObject({
      id: 'ERR_EMBEDDED_POSTGRES',
      message: expect.stringMatching(new RegExp(`port ${port}[\\s\\S]*(could not bind|Address already in use)`)),
    });
    // The failed start released the data dir.
    const pg = await start(dir);
    expect(await query(pg.url, 'select 1 as one')).toEqual([{ one: 1 }]);
  });

  it.runIf(process.getuid?.() === 0)('as root, names a parent folder the postgres user cannot enter', async () => {
    const dir = await tempDir(); // mkdtemp makes it 0700 and it is not ours to loosen
    await expect(start(path.join(dir, 'inner', 'data'))).rejects.toMatchObject({
      id: 'ERR_DATA_DIR_NOT_ENTERABLE',
      message: expect.stringContaining(`cannot enter ${dir}`),
    });
  });

  it.runIf(process.getuid?.() === 0)('as root, opens the folders it created itself to the postgres user', async () => {
    const dir = await tempDir();
    await chmod(dir, 0o711);
    const nested = path.join(dir, 'a', 'b');
    process.umask(0o077);
    try {
      await start(nested);
    } finally {
      process.umask(0o022);
    }
    expect((await stat(path.join(dir, 'a'))).mode & 0o001).toBe(0o001);
  });
});
