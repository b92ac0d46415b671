import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A floor server (bench/floors/*) in a process of its own, started the way the service is. */

export interface FloorProcess {
  baseUrl: string;
  pid: number;
  stop(): Promise<void>;
}

const FLOORS = {
  grpc: fileURLToPath(new URL('../floors/introspect-grpc-floor.ts', import.meta.url)),
  connect: fileURLToPath(new URL('../floors/introspect-connect-floor.ts', import.meta.url)),
} as const;

export async function startFloor(kind: keyof typeof FLOORS, introspectResponse: Uint8Array): Promise<FloorProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FLOORS[kind], Buffer.from(introspectResponse).toString('hex')], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`${kind} floor not listening after 30 s: ${output}`))), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = /^\{"port":(\d+)\}$/m.exec(buf);
      if (line) (clearTimeout(timer), resolve(Number(line[1])));
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${kind} floor exited with ${code}: ${output}`))));
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
