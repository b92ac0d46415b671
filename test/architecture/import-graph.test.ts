import { describe, expect, it } from 'vitest';
import { describeCycle, folderCycles } from './folder-cycles.js';
import { checkImportRules, describeViolation, unresolvedImports } from './import-rules.js';
import { buildSourceGraph } from './source-graph.js';

/** docs/architecture.md: the import rules L1-L8 over the real src/ tree. */
describe('import graph of src/', () => {
  const graph = buildSourceGraph();

  it('finds the source files and their imports', () => {
    expect(graph.files).toContain('src/identity/app.ts');
    expect(graph.edges.length).toBeGreaterThan(100);
  });

  it('every relative import resolves to a file', () => {
    expect(unresolvedImports(graph).join('\n')).toBe('');
  });

  it('has no forbidden arrow (L1-L5, L8)', () => {
    expect(checkImportRules(graph).map(describeViolation).join('\n')).toBe('');
  });

  it('has no import cycle between folders of src/identity (L6)', () => {
    expect(folderCycles(graph).map(describeCycle).join('\n')).toBe('');
  });
});
