import { afterEach, describe, expect, it } from 'vitest';
import { databaseOutage } from '../../src/identity/persistence/database-outage.js';
import { openDatabase, type Database } from '../../src/identity/persistence/database.js';
import { prepared, runPrepared } from '../../src/identity/persistence/prepared.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createEmptyTestDatabase } from '../helpers/database.js';

const SQUARE = prepared('latch_test_square', 'select $1::int * $1::int as n');
const PREPARED_HERE = prepared('latch_test_prepared_here', 'select name from pg_prepared_statements order by name');
const SLEEP = prepared('latch_test_sleep', 'select pg_sleep($1::float8)');

describe('prepared statements on the pooled connections', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** One pooled connection, so every statement below runs on the same session. */
  async function open(statementTimeoutMs = 5000): Promise<Database> {
    const t = await createEmptyTestDatabase();
    cleanup.push(() => t.drop());
    const db = await openDatabase({ databaseUrl: t.url, dataDir: '/nonexistent', poolMax: 1, logger: silentLogger, waits: { statementTimeoutMs } });
    cleanup.push(() => db.close());
    return db;
  }

  it('answers with its rows, and is prepared once on the connection under its name', async () => {
    const db = await open();
    for (const x of [2, 3, 4]) expect(await runPrepared<{ n: number }>(db.orm, SQUARE, [x])).toEqual([{ n: x * x }]);
    const names = (await runPrepared<{ name: string }>(db.orm, PREPARED_HERE, [])).map((r) => r.name);
    expect(names).toEqual(['latch_test_prepared_here', 'latch_test_square']);
  });

  it('a statement timeout is an outage the service reports as unavailable, and the pool still works after it', async () => {
    const db = await open(200);
    const err = await runPrepared(db.orm, SLEEP, [2]).catch((e: unknown) => e);
    expect(databaseOutage(err)).toBe('statement timeout');
    expect(await runPrepared<{ n: number }>(db.orm, SQUARE, [5])).toEqual([{ n: 25 }]);
  });
});
