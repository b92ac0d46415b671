import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { errorsDocPath, renderErrorsDoc } from '../../scripts/errors-doc.js';
import { errorCatalogue, type ErrorEntry } from './error-catalogue.js';

const srcDir = fileURLToPath(new URL('..', import.meta.url));
const catalogueFile = fileURLToPath(new URL('./error-catalogue.ts', import.meta.url));
const catalogue = errorCatalogue as Record<string, ErrorEntry>;

/** Source files that ship: tests name made-up ids on purpose, src/gen is generated. */
function shippedSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return full === path.join(srcDir, 'gen') ? [] : shippedSources(full);
    return /\.(?:ts|mts|js|mjs)$/.test(e.name) && !/\.test\.[mc]?[tj]s$/.test(e.name) && full !== catalogueFile ? [full] : [];
  });
}

const sources = shippedSources(srcDir).map((file) => ({ file: path.relative(srcDir, file), text: readFileSync(file, 'utf8') }));

/** Every quoted 'ERR_…' in shipped code, with where it is. */
const named = sources.flatMap(({ file, text }) => [...text.matchAll(/['"`](ERR_[A-Z0-9_]+)['"`]/g)].map((m) => ({ file, id: m[1]! })));

describe('the error-id catalogue', () => {
  it('holds every id that code under src/ throws or names', () => {
    const unknown = named.filter(({ id }) => !Object.hasOwn(catalogue, id)).map(({ file, id }) => `${file}: ${id}`);
    expect(unknown, 'add these to src/shared/error-catalogue.ts (or use an id it has)').toEqual([]);
  });

  it('holds no id that nothing uses', () => {
    const used = new Set(named.map(({ id }) => id));
    expect(Object.keys(catalogue).filter((id) => !used.has(id))).toEqual([]);
  });

  it('gives each id the kind it is thrown with', () => {
    const thrown = sources.flatMap(({ file, text }) => [
      ...[...text.matchAll(/new LatchError\(\s*'([a-z_]+)',\s*'(ERR_[A-Z0-9_]+)'/g)].map((m) => ({ file, kind: m[1]!, id: m[2]! })),
      ...[...text.matchAll(/\bunavailable\(\s*'(ERR_[A-Z0-9_]+)'/g)].map((m) => ({ file, kind: 'unavailable', id: m[1]! })),
    ]);
    expect(thrown.length).toBeGreaterThan(20);
    const wrong = thrown
      .filter(({ id, kind }) => Object.hasOwn(catalogue, id) && !(catalogue[id]!.kinds as readonly string[]).includes(kind))
      .map(({ file, kind, id }) => `${file}: ${id} thrown as ${kind}`);
    expect(wrong).toEqual([]);
  });

  it('is what docs/errors.md says (regenerate with `npx tsx scripts/errors-doc.ts`)', () => {
    expect(readFileSync(errorsDocPath, 'utf8')).toBe(renderErrorsDoc());
  });

  it('lists every id exactly once in docs/errors.md', () => {
    const doc = readFileSync(errorsDocPath, 'utf8');
    for (const id of Object.keys(catalogue)) expect(doc.split(`| \`${id}\` |`).length - 1, id).toBe(1);
  });
});
