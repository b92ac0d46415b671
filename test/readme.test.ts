import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestIdentity, type TestIdentity } from './helpers/identity.js';

const run = promisify(execFile);
const root = path.join(import.meta.dirname, '..');

/** The README's shell blocks, run as written (only the ports and the credential file differ). */
describe('README walkthrough', () => {
  let t: TestIdentity;
  let dir: string;
  let blocks: string[];
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, nats: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'latch-readme-'));
    await writeFile(path.join(dir, 'caller'), t.introspectionSecret);
    const readme = await readFile(path.join(root, 'README.md'), 'utf8');
    blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // Each test signs up its own user so the blocks can run in any order.
  let n = 0;
  const localize = (block: string) =>
    block
      .replaceAll('ada@example.com', `ada-${++n}@example.com`)
      .replaceAll('http://localhost:50051', t.grpcUrl)
      .replaceAll('http://localhost:8080', t.httpUrl)
      .replaceAll('data/secrets/introspection-client', path.join(dir, 'caller'));

  async function sh(block: string): Promise<string> {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', localize(block)], { cwd: root, timeout: 110_000 });
    return stdout;
  }

  it('lists the three services, health and reflection through reflection', async () => {
    const out = await sh(blocks.find((b) => b.includes('--list-services'))!);
    expect(out.split('\n').filter(Boolean).sort()).toEqual([
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'identity.v1.AdminService',
      'identity.v1.AuthService',
      'identity.v1.TokenIntrospectionService',
    ]);
  });

  it('Register → Login → GetCurrentUser → Refresh → Introspect works as written', async () => {
    const out = await sh(blocks.find((b) => b.includes('AuthService/Register'))!);
    expect(out).toMatch(/"email": "ada-\d+@example.com"/);
    expect(out).toContain('"refreshToken"');
    expect(out).toMatch(/"active": true/);
  }, 90_000);

  it('the TOTP walkthrough enrols and completes an MFA sign-in', async () => {
    const flow = blocks.find((b) => b.includes('AuthService/Register'))!;
    const mfa = blocks.find((b) => b.includes('BeginTotpEnrollment'))!;
    const out = await sh(`${flow}\n${mfa}`);
    expect(out).toMatch(/"backupCodes": \[/);
    const session = JSON.parse(out.slice(out.lastIndexOf('{\n  "session"'))) as { session: { accessToken: string } };
    const info = await t.grpc.introspection.introspect({ token: session.session.accessToken }, { headers: { authorization: `Bearer ${t.introspectionSecret}` } });
    expect(info.amr).toEqual(['pwd', 'otp']);
    // Nine buf curl runs, each a fresh process: on a busy two-core machine that takes a while.
  }, 120_000);

  it('the Connect curl example signs in', async () => {
    const flow = blocks.find((b) => b.includes('AuthService/Register'))!;
    const out = await sh(`{\n${flow}\n} >/dev/null\n${blocks.find((b) => b.startsWith('curl'))!}`);
    expect(JSON.parse(out).session.accessToken).toBeTruthy();
  }, 90_000);
});
