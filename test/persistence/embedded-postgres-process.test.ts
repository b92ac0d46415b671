import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { knex } from '@mikro-orm/postgresql';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/identity/persistence/embedded/data-dir-lock.js';
import { startEmbeddedPostgres } from '../../src/identity/persistence/embedded/embedded-postgres.js';
import { silentLogger } from '../../src/shared/logger.js';

const fixture = fileURLToPath(new URL('./fixtures/start-embedded.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the fixture in its own Node process; resolves with its first line (READY/FAILED ...). */
function startInChild(dataDir: string): { child: ChildProcess; line: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before reporting: ${out}`)));
  });
  return { child, line };
}

async function sql(url: string, text: string): Promise<unknown[]> {
  const db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  try {
    return ((await db.raw(text)) as { rows: unknown[] }).rows;
  } finally {
    await db.destroy();
  }
}

describe('embedded PostgreSQL across processes', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('a second process on the same data dir gets a clear error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'latch-pg-proc-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const first = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger });
    cleanup.push(() => first.stop());

    const second = startInChild(dir);
    await expect(second.line).resolves.toMatch(new RegExp(`^FAILED data directory .* is in use by process ${process.pid}`));
  });

  it('starts again after the owning Node process was killed with SIGKILL, stopping the orphaned server', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'latch-pg-proc-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const { child, line } = startInChild(dir);
    cleanup.push(async () => void child.kill('SIGKILL'));
    const ready = await line;
    expect(ready).toMatch(/^READY postgres:\/\//);
    const orphanUrl = ready.slice('READY '.length);
    await sql(orphanUrl, 'create table kept (v int); insert into kept values (42)');
    const orphanPid = Number.parseInt((await readFile(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]!, 10);

    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    // Nothing ran on the way out: the lock and the server are left behind.
    expect(isAlive(orphanPid)).toBe(true);

    const again = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger });
    cleanup.push(() => again.stop());
    expect(isAlive(orphanPid)).toBe(false);
    expect(await sql(again.url, 'select v from kept')).toEqual([{ v: 42 }]);
  });
});
