import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { assertPortsFree } from '../../src/identity/process/listen-ports.js';
import { TEST_PASSWORD, uniqueEmail } from '../helpers/identity.js';
import { describePids, descendants, freeServicePorts, repoRoot, serviceEnv, startService, survivors, type RunningService } from '../helpers/service-process.js';

/**
 * `npm start` stopped the two ways it is stopped in practice: a process manager's SIGTERM to the
 * npm process, and a terminal's Ctrl-C (SIGINT to the whole process group, which npm forwards
 * once more). Either way the in-flight call finishes and nothing the service started outlives it:
 * not the embedded PostgreSQL, not the DATA_DIR lock, not the ports.
 */
describe('npm start, then stop', () => {
  let dir: string;
  const started: RunningService[] = [];
  afterAll(async () => {
    for (const s of started) {
      try {
        process.kill(-s.proc.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function startAndStop(stop: (npmPid: number) => void): Promise<void> {
    dir ??= await mkdtemp(path.join(os.tmpdir(), 'latch-start-stop-'));
    const ports = await freeServicePorts();
    const s = await startService('npm', ['start'], serviceEnv(dir, ports), ports);
    started.push(s);
    const npmPid = s.proc.pid!;
    const auth = createClient(AuthService, createConnectTransport({ baseUrl: `http://127.0.0.1:${ports.http}`, httpVersion: '1.1' }));
    const email = uniqueEmail();
    await auth.register({ email, password: TEST_PASSWORD });

    const pids = [npmPid, ...descendants(npmPid)];
    // npm, the service, and the embedded PostgreSQL with its own helper processes.
    expect(pids.length).toBeGreaterThan(3);

    // A password hash and the session writes: the call is still running when the signal lands.
    const inFlight = auth.login({ email, password: TEST_PASSWORD });
    await new Promise((r) => setTimeout(r, 5));
    stop(npmPid);

    expect((await inFlight).result.case).toBe('session');
    const alive = await survivors(pids, 20_000);
    expect(describePids(alive), s.output()).toEqual([]);
    await s.exited;
    expect(s.output()).toContain('stopped');
    expect(s.output()).not.toContain('second signal');
    expect(existsSync(path.join(dir, 'latch.lock'))).toBe(false);
    expect(existsSync(path.join(dir, 'postgres', 'postmaster.pid'))).toBe(false);
    await expect(
      assertPortsFree([
        { variable: 'GRPC_PORT', host: '127.0.0.1', port: ports.grpc },
        { variable: 'HTTP_PORT', host: '127.0.0.1', port: ports.http },
        { variable: 'OPS_PORT', host: '127.0.0.1', port: ports.ops },
      ]),
    ).resolves.toBeUndefined();
  }

  it('SIGTERM to the npm process (a process manager) drains and stops everything', async () => {
    await startAndStop((npmPid) => process.kill(npmPid, 'SIGTERM'));
  }, 120_000);

  it('SIGINT to the process group (Ctrl-C in a terminal) does the same, on the same DATA_DIR', async () => {
    await startAndStop((npmPid) => process.kill(-npmPid, 'SIGINT'));
  }, 120_000);

  it('a busy port stops start-up at once, in one line naming its variable, before any database starts', async () => {
    const busyDir = await mkdtemp(path.join(os.tmpdir(), 'latch-busy-port-'));
    const blocker = net.createServer();
    try {
      const ports = await freeServicePorts();
      await new Promise<void>((r) => blocker.listen(ports.http, '127.0.0.1', r));
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/identity/main.ts'], { cwd: repoRoot, env: serviceEnv(busyDir, ports), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(78);
      expect(stderr).toBe(`latch: HTTP_PORT ${ports.http} on 127.0.0.1 is already in use\n`);
      expect(stdout).not.toContain('embedded PostgreSQL');
      expect(existsSync(path.join(busyDir, 'postgres'))).toBe(false);
      expect(existsSync(path.join(busyDir, 'latch.lock'))).toBe(false);
    } finally {
      await new Promise((r) => blocker.close(r));
      await rm(busyDir, { recursive: true, force: true });
    }
  });
});
