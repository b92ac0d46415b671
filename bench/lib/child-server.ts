import { spawn } from 'node:child_process';

/** A bench server in a process of its own that prints `{"port":N}` on stdout once it listens. */
export interface ChildServer {
  baseUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx <script> ...args` with a minimal environment (PATH, HOME,
 * NODE_ENV=production, plus `env`) and waits up to 30 s for its port line.
 */
export async function startChildServer(label: string, script: string, args: string[] = [], env: Record<string, string> = {}, cwd?: string): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`${label} not listening after 30 s: ${output}`))), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = /^\{"port":(\d+)\}$/m.exec(buf);
      if (line) (clearTimeout(timer), resolve(Number(line[1])));
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${label} exited with ${code}: ${output}`))));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}
