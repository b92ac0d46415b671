import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LatchError } from '../../../shared/errors.js';

export interface DataDirLock {
  readonly file: string;
  release(): Promise<void>;
}

/** Lock files this process holds, so a second start in the same process is refused too. */
const held = new Set<string>();
let exitHookInstalled = false;

/**
 * Takes `<dataDir>/latch.lock` (created exclusively, holding our pid) so two processes never run
 * an embedded PostgreSQL on one data dir. A lock left by a dead process is taken over; the
 * takeover renames the stale file away first so only one of several racing processes wins.
 */
export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const file = path.join(path.resolve(dataDir), 'latch.lock');
  for (let attempt = 0; attempt < 5; attempt++) {
    // Written whole under a temporary name and linked into place, so a reader never sees an
    // empty lock that is merely half-created.
    const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
    try {
      await link(tmp, file);
      held.add(file);
      installExitHook();
      return { file, release: () => release(file) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const owner = await readPid(file);
    if (owner === undefined) continue; // removed between our open and read: try again
    if (isAlive(owner) && (owner !== process.pid || held.has(file))) throw locked(dataDir, owner);
    // The owner is dead (or a previous life of our own pid): move its lock aside and retry.
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await rename(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = await readPid(aside);
    if (moved !== owner) {
      // Someone replaced the stale lock with a live one just before our rename: put it back.
      await link(aside, file).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      throw locked(dataDir, moved ?? owner);
    }
    await unlink(aside).catch(() => undefined);
  }
  throw new LatchError('unavailable', 'ERR_DATA_DIR_LOCKED', `could not take the lock ${file}; try again`);
}

async function release(file: string): Promise<void> {
  if (!held.delete(file)) return;
  if ((await readPid(file)) === process.pid) await unlink(file).catch(() => undefined);
}

function locked(dataDir: string, pid: number): LatchError {
  return new LatchError(
    'failed_precondition',
    'ERR_DATA_DIR_LOCKED',
    `data directory ${path.resolve(dataDir)} is in use by process ${pid}; stop it or set DATA_DIR to another folder`,
  );
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
    // An unreadable (e.g. empty, crash mid-write) lock names no live owner.
    return Number.isInteger(pid) && pid > 0 ? pid : 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Whether a process exists (zombies count as dead: they hold nothing). */
export function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}

/** Best effort: a normal exit leaves no lock behind (a kill -9 does; the next start takes it over). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const file of held) {
      try {
        if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
      } catch {
        // already gone
      }
    }
  });
}
