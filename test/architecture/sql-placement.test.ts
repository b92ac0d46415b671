import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isProductionSource, listFiles, repoRoot } from './source-graph.js';
import { findSqlLiterals, mayHoldSql, needsReasonAbove } from './sql-literals.js';

/** docs/architecture.md L7 over the real src/ tree (generated code and tests aside). */
describe('SQL text in src/', () => {
  const files = listFiles(repoRoot, 'src', (f) => isProductionSource(f) && !f.startsWith('src/gen/'));
  const literals = files.flatMap((f) => findSqlLiterals(f, readFileSync(path.join(repoRoot, f), 'utf8')));

  it('finds the statements the stores and persistence hold', () => {
    expect(literals.some((l) => l.file.startsWith('src/identity/persistence/'))).toBe(true);
    expect(literals.some((l) => needsReasonAbove(l.file))).toBe(true);
  });

  it('sits only in *-store.ts files and persistence/ (L7)', () => {
    const misplaced = literals
      .filter((l) => !mayHoldSql(l.file))
      .map((l) => `[L7 SQL only in *-store.ts and persistence/] ${l.file}:${l.line}: ${l.excerpt}`);
    expect(misplaced.join('\n')).toBe('');
  });

  it('has a one-line reason directly above every hand-written statement in a store (L7)', () => {
    const unexplained = literals
      .filter((l) => needsReasonAbove(l.file) && !l.hasReasonAbove)
      .map(
        (l) =>
          `[L7 reason above hand-written SQL] ${l.file}:${l.line}: ${l.excerpt}\n` +
          '    say in a comment line directly above why this is not the entity manager (a lock, a compare-and-set, ...)',
      );
    expect(unexplained.join('\n')).toBe('');
  });
});
