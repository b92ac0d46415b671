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

  it('the password reset example: the mailed token resets the password, once', async () => {
    const flow = blocks.find((b) => b.includes('AuthService/Register'))!;
    const request = blocks.find((b) => b.includes('AuthService/RequestPasswordReset'))!;
    const reset = blocks.find((b) => b.includes('AuthService/ResetPassword'))!;
    const email = `ada-${n + 1}@example.com`;
    await sh(`{\n${flow}\n} >/dev/null\n${request}`);
    // The in-process mailer prints the mail once the outbox relay has handed it over.
    let token: string | undefined;
    for (let i = 0; i < 100 && token === undefined; i++) {
      const mail = t
        .mailOutput()
        .split('----- end of mail -----')
        .find((m) => m.includes(`To: ${email}\nSubject: Reset your password\n`));
      token = mail && /[?&]token=([^\s&]+)/.exec(mail)?.[1];
      if (token === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(token).toBeDefined();
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', localize(reset)], {
      cwd: root,
      timeout: 60_000,
      env: { ...process.env, RESET_TOKEN: token! },
    });
    expect(stdout.trim()).toBe('{}');
    const login = await t.grpc.auth.login({ email, password: 'copper-lantern-slowly-58' });
    expect(login.result.case).toBe('session');
    // A second use of the same link fails.
    await expect(run('bash', ['-euo', 'pipefail', '-c', localize(reset)], { cwd: root, timeout: 60_000, env: { ...process.env, RESET_TOKEN: token! } })).rejects.toThrow(
      /has already been used/,
    );
  }, 120_000);

  it('the Connect curl example signs in', async () => {
    const flow = blocks.find((b) => b.includes('AuthService/Register'))!;
    const out = await sh(`{\n${flow}\n} >/dev/null\n${blocks.find((b) => b.startsWith('curl'))!}`);
    expect(JSON.parse(out).session.accessToken).toBeTruthy();
  }, 90_000);
});
