import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { describePids, descendants, freeServicePorts, repoRoot, serviceEnv, startService, survivors, type RunningService } from '../helpers/service-process.js';

/**
 * `npm run build` output run the way the image runs it (package.json, node_modules and dist/ side
 * by side, `node dist/identity/main.js`): no TypeScript loader, embedded default database.
 */
describe('compiled build', () => {
  let work: string;
  let dataDir: string;
  let service: RunningService | undefined;
  afterAll(async () => {
    if (service?.proc.pid) {
      try {
        process.kill(-service.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('builds, serves from dist with the embedded database, and stops cleanly on SIGTERM', async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'latch-build-'));
    const app = path.join(work, 'app');
    await promisify(execFile)(process.execPath, [path.join(repoRoot, 'scripts/build.mjs'), '--out-dir', path.join(app, 'dist')], { cwd: repoRoot });
    await copyFile(path.join(repoRoot, 'package.json'), path.join(app, 'package.json'));
    await symlink(path.join(repoRoot, 'node_modules'), path.join(app, 'node_modules'), 'dir');

    const files = await listFiles(path.join(app, 'dist'));
    expect(files).toContain('identity/main.js');
    // Migrations can run from the build too: the entry `npm run migrate` uses, compiled.
    const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const migrateEntry = /src\/(\S+)\.ts/.exec(pkg.scripts.migrate ?? '')?.[1];
    expect(files).toContain(`${migrateEntry}.js`);
    expect(files).toContain('identity/password/common-passwords.txt');
    // Declarations (.d.ts) are emitted for the SDK's consumers; no TypeScript source, no test.
    expect(files.filter((f) => /\.test\.(js|d\.ts)$/.test(f) || (/\.ts$/.test(f) && !f.endsWith('.d.ts')))).toEqual([]);
    // The SDK entry point (package.json "exports": "./sdk"), imported by package name from the build alone.
    expect(files).toEqual(expect.arrayContaining(['sdk/index.js', 'sdk/index.d.ts']));
    const sdk = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', "const m = await import('latch/sdk'); console.log(typeof m.LatchAuth.create, typeof m.latchInterceptor, typeof m.guardUnary, typeof m.withLatch)"], {
      cwd: app,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(sdk.stdout.trim()).toBe('function function function function');

    const ports = await freeServicePorts();
    // Its own folder: as root the database runs as the postgres user, who cannot enter `work`.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'latch-build-data-'));
    // NODE_OPTIONS emptied: nothing (such as a TypeScript loader) may come in from the test runner.
    const s = await startService(process.execPath, ['dist/identity/main.js'], { ...serviceEnv(dataDir, ports), NODE_OPTIONS: '' }, ports, app);
    service = s;
    const ready = await fetch(`http://127.0.0.1:${ports.ops}/readyz`);
    expect(ready.status).toBe(200);
    const jwks = (await (await fetch(`http://127.0.0.1:${ports.http}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    expect(jwks.keys.length).toBeGreaterThan(0);

    const pids = [s.proc.pid!, ...descendants(s.proc.pid!)];
    process.kill(s.proc.pid!, 'SIGTERM');
    expect(await s.exited).toEqual({ code: 0, signal: null });
    expect(describePids(await survivors(pids, 20_000))).toEqual([]);
    expect(s.output()).toContain('stopped');
  }, 180_000);
});

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}
