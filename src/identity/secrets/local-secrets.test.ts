import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateLocalSecret } from './local-secrets.js';

describe('loadOrCreateLocalSecret', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'latch-secrets-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the secret once with private permissions and returns it thereafter', async () => {
    let calls = 0;
    const gen = () => {
      calls++;
      return randomBytes(32).toString('base64');
    };
    const first = await loadOrCreateLocalSecret(dir, 'key', gen);
    const second = await loadOrCreateLocalSecret(dir, 'key', gen);
    expect(second).toBe(first);
    expect(calls).toBe(1);
    expect((await stat(path.join(dir, 'secrets', 'key'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, 'secrets'))).mode & 0o777).toBe(0o700);
    expect(await readdir(path.join(dir, 'secrets'))).toEqual(['key']);
  });

  it('returns the stored value trimmed', async () => {
    await loadOrCreateLocalSecret(dir, 'other', () => 'x');
    await writeFile(path.join(dir, 'secrets', 'pw'), '  hello \n');
    expect(await loadOrCreateLocalSecret(dir, 'pw', () => 'unused')).toBe('hello');
  });

  it('gives every concurrent caller the same value', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => loadOrCreateLocalSecret(dir, 'race', () => randomBytes(16).toString('hex'))),
    );
    expect(new Set(results).size).toBe(1);
    expect(await readdir(path.join(dir, 'secrets'))).toEqual(['race']);
  });

  it('rejects names that could escape the secrets folder', async () => {
    await expect(loadOrCreateLocalSecret(dir, '../x', () => 'v')).rejects.toThrow(/invalid local secret name/);
    await expect(loadOrCreateLocalSecret(dir, '..', () => 'v')).rejects.toThrow(/invalid local secret name/);
  });

  it('refuses an empty stored secret instead of silently replacing it', async () => {
    await loadOrCreateLocalSecret(dir, 'a', () => 'v');
    await writeFile(path.join(dir, 'secrets', 'empty'), '\n');
    await expect(loadOrCreateLocalSecret(dir, 'empty', () => 'new')).rejects.toMatchObject({
      id: 'ERR_LOCAL_SECRET_EMPTY',
    });
  });
});
