import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { TEST_PASSWORD, uniqueEmail } from '../helpers/identity.js';

const root = path.join(import.meta.dirname, '..', '..');

/** `npm start` as a user runs it: embedded PostgreSQL, then SIGTERM while a call is in flight. */
describe('process lifecycle', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function start(): Promise<{ proc: ChildProcess; httpPort: number; output: () => string }> {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/identity/main.ts'], {
      cwd: root,
      env: { ...process.env, DATA_DIR: dir, GRPC_PORT: '0', HTTP_PORT: '0', OPS_PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '', NATS_URL: '', INTROSPECTION_CLIENTS: '', SECRET_ENCRYPTION_KEY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start line:\n${out}`)), 30_000);
      const onData = (b: Buffer) => {
        out += b.toString();
        for (const line of out.split('\n')) {
          if (!line.includes('latch identity service started')) continue;
          clearTimeout(timer);
          resolve({ proc, httpPort: (JSON.parse(line) as { httpPort: number }).httpPort, output: () => out });
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)));
    });
  }

  it('keeps data across restarts and finishes in-flight calls on SIGTERM', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'latch-proc-'));
    const email = uniqueEmail();
    let s = await start();
    let auth = createClient(AuthService, createConnectTransport({ baseUrl: `http://127.0.0.1:${s.httpPort}`, httpVersion: '1.1' }));
    await auth.register({ email, password: TEST_PASSWORD });

    const inFlight = auth.login({ email, password: TEST_PASSWORD });
    await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise<number | null>((resolve) => s.proc.once('exit', resolve));
    s.proc.kill('SIGTERM');
    const res = await inFlight;
    expect(res.result.case).toBe('session');
    expect(await exited).toBe(0);
    expect(s.output()).toContain('stopped');
    expect(existsSync(path.join(dir, 'postgres', 'postmaster.pid'))).toBe(false);

    s = await start();
    auth = createClient(AuthService, createConnectTransport({ baseUrl: `http://127.0.0.1:${s.httpPort}`, httpVersion: '1.1' }));
    expect((await auth.login({ email, password: TEST_PASSWORD })).result.case).toBe('session');
    const done = new Promise((resolve) => s.proc.once('exit', resolve));
    s.proc.kill('SIGINT');
    await done;
    expect(s.output()).not.toContain(TEST_PASSWORD);
  }, 90_000);
});
