import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive } from '../../src/identity/persistence/embedded/data-dir-lock.js';
import { freePort } from '../../src/identity/persistence/embedded/embedded-postgres-host.js';

/** The service as a user or a process manager starts it: its own process, embedded database. */

export const repoRoot = path.join(import.meta.dirname, '..', '..');

export interface ServicePorts {
  grpc: number;
  http: number;
  ops: number;
}

export interface RunningService {
  proc: ChildProcess;
  ports: ServicePorts;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freeServicePorts(): Promise<ServicePorts> {
  return { grpc: await freePort(), http: await freePort(), ops: await freePort() };
}

/** Embedded mode on fixed ports (so the test can check they are closed afterwards). */
export function serviceEnv(dataDir: string, ports: ServicePorts): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    BIND_ADDRESS: '127.0.0.1',
    OPS_BIND_ADDRESS: '127.0.0.1',
    GRPC_PORT: String(ports.grpc),
    HTTP_PORT: String(ports.http),
    OPS_PORT: String(ports.ops),
    LOG_LEVEL: 'info',
    DATABASE_URL: '',
    REDIS_URL: '',
    NATS_URL: '',
    INTROSPECTION_CLIENTS: '',
    SECRET_ENCRYPTION_KEY: '',
    // Tests have no internet; the breach check has its own tests against a local fake.
    HIBP_ENABLED: 'false',
  };
}

/**
 * Spawns `command` detached (its own process group, like a job a terminal runs) and waits for
 * the start line.
 */
export function startService(command: string, args: string[], env: NodeJS.ProcessEnv, ports: ServicePorts, cwd = repoRoot): Promise<RunningService> {
  const proc = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line within 60 s:\n${out}`)), 60_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes('latch identity service started')) {
        clearTimeout(timer);
        resolve({ proc, ports, output: () => out, exited });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before starting:\n${out}`));
    });
  });
}

/** Every live descendant of `pid` (the server of the embedded database included), from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(pid);
  return found;
}

/** The pids still alive after `timeoutMs`. */
export async function survivors(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** For a failure message: what each surviving pid is. */
export function describePids(pids: number[]): string[] {
  return pids.map((p) => {
    try {
      return `${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ')}`;
    } catch {
      return `${p}: (gone)`;
    }
  });
}
