import { describe, expect, it } from 'vitest';
import { findOutsideReferences, mayReferToOutside, scanRepository } from './outside-references.js';
import { repoRoot } from './source-graph.js';

const existing = new Set(['src/shared', 'src/identity', 'test/helpers']);
const exists = (p: string) => existing.has(p);

describe('finding references to documents outside the repository', () => {
  it.each([
    ['src/identity/password/policy.ts', ' * New-password rules of SECURITY.md P1/P2', 'SECURITY.md'],
    ['src/shared/config.ts', '/** secrets of at least 32 characters (API.md, Introspection). */', 'API.md'],
    ['README.md', 'See ARCHITECTURE.md for the layers.', 'ARCHITECTURE.md'],
    ['docs/operations.md', 'as found in FIELD-NOTES.md', 'FIELD-NOTES.md'],
    ['test/x.test.ts', "// naming follows STYLE.md", 'STYLE.md'],
    ['docs/security.md', 'the list in [shared](../shared/SECURITY.md)', '../shared'],
    ['README.md', 'cp ../shared/notes.txt .', '../shared'],
    ['src/identity/app.ts', "import x from '../../shared/config.js';", '../../shared'],
  ])('flags %s: %s', (file, line, reference) => {
    expect(findOutsideReferences(file, `first line\n${line}\n`, exists).map((r) => [r.line, r.reference])).toContainEqual([2, reference]);
  });

  it.each([
    ['src/identity/app.ts', "import { loadConfig } from '../shared/config.js';"],
    ['src/identity/account/user-store.ts', "import type { Clock } from '../../shared/clock.js';"],
    ['src/identity/password/policy.ts', ' * New-password rules of docs/security.md P1/P2'],
    ['README.md', 'The contract is in [api.md](docs/api.md); see docs/architecture.md.'],
    ['docs/operations.md', 'OPENAPI.md and MY-STYLE.md are other names'],
  ])('passes %s: %s', (file, line) => {
    expect(findOutsideReferences(file, line, exists)).toEqual([]);
  });

  it('leaves the design history and the check itself alone', () => {
    expect(mayReferToOutside('docs/history.md')).toBe(true);
    expect(mayReferToOutside('docs/decisions/0001-layers.md')).toBe(true);
    expect(mayReferToOutside('test/architecture/outside-references.ts')).toBe(true);
    expect(mayReferToOutside('docs/security.md')).toBe(false);
    expect(mayReferToOutside('README.md')).toBe(false);
    expect(mayReferToOutside('test/architecture/import-rules.ts')).toBe(false);
  });
});

describe('the repository', () => {
  it('refers to no document outside it', () => {
    const found = scanRepository(repoRoot).map(
      (r) => `${r.file}:${r.line}: ${r.reference} is outside the repository; cite the project's own docs/*.md (docs/security.md A4)`,
    );
    expect(found.join('\n')).toBe('');
  });
});
