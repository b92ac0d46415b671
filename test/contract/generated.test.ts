import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const buf = join(root, 'node_modules', '.bin', 'buf');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('protobuf contract', () => {
  const out = mkdtempSync(join(tmpdir(), 'latch-gen-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('passes buf lint (STANDARD)', () => {
    expect(() => execFileSync(buf, ['lint'], { cwd: root, stdio: 'pipe' })).not.toThrow();
  });

  it('src/gen/ is what `npm run generate` produces from proto/', () => {
    const template = JSON.stringify({
      version: 'v2',
      plugins: [{ local: join(root, 'node_modules', '.bin', 'protoc-gen-es'), out, opt: ['target=ts', 'import_extension=js'] }],
    });
    execFileSync(buf, ['generate', '--template', template], { cwd: root, stdio: 'pipe' });
    const fresh = files(out).map((f) => relative(out, f)).sort();
    const committed = files(join(root, 'src', 'gen')).map((f) => relative(join(root, 'src', 'gen'), f)).sort();
    expect(committed).toEqual(fresh);
    for (const f of fresh) {
      expect(readFileSync(join(root, 'src', 'gen', f), 'utf8'), `src/gen/${f} is stale: run npm run generate`).toBe(readFileSync(join(out, f), 'utf8'));
    }
  });
});
