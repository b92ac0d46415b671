import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** What one import specifier points at: a file of the repository, a package, or nothing that exists. */
export type ImportTarget =
  | { kind: 'module'; path: string }
  | { kind: 'package'; name: string }
  | { kind: 'unresolved'; path: string };

export interface ImportEdge {
  /** Repository-relative path of the importing file, with forward slashes. */
  from: string;
  specifier: string;
  target: ImportTarget;
}

/** Every production file under a folder with the imports it makes, `import type` included. */
export interface SourceGraph {
  files: string[];
  edges: ImportEdge[];
}

export const repoRoot = path.resolve(import.meta.dirname, '../..');

/** Test files may wire anything together to test it; the rules are about the code that ships. */
export function isProductionSource(file: string): boolean {
  return /\.(ts|mts|cts)$/.test(file) && !/\.test\.(ts|mts|cts)$/.test(file) && !file.endsWith('.d.ts');
}

export function listFiles(root: string, dir: string, keep: (file: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const child = path.join(abs, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) {
        const rel = toRepoPath(root, child);
        if (keep(rel)) out.push(rel);
      }
    }
  };
  walk(path.join(root, dir));
  return out.sort();
}

export function buildSourceGraph(root: string = repoRoot, dir = 'src'): SourceGraph {
  const files = listFiles(root, dir, isProductionSource);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    const text = readFileSync(path.join(root, from), 'utf8');
    for (const specifier of importSpecifiers(text)) {
      edges.push({ from, specifier, target: resolveImport(root, from, specifier) });
    }
  }
  return { files, edges };
}

/** Static imports, re-exports, `import type`, `import x = require()` and dynamic `import()`. */
export function importSpecifiers(sourceText: string): string[] {
  return ts.preProcessFile(sourceText, true, true).importedFiles.map((f) => f.fileName);
}

export function resolveImport(root: string, from: string, specifier: string): ImportTarget {
  if (!specifier.startsWith('.') && !specifier.startsWith('/')) return { kind: 'package', name: packageName(specifier) };
  const wanted = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  // NodeNext: sources import `x.js` and the compiler finds `x.ts`.
  const candidates = [wanted, wanted.replace(/\.js$/, '.ts'), wanted.replace(/\.mjs$/, '.mts'), wanted.replace(/\.cjs$/, '.cts')];
  for (const candidate of candidates) {
    if (statSync(path.join(root, candidate), { throwIfNoEntry: false })?.isFile()) return { kind: 'module', path: candidate };
  }
  return { kind: 'unresolved', path: wanted };
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`, `node:fs` stays. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function toRepoPath(root: string, abs: string): string {
  return path.relative(root, abs).split(path.sep).join('/');
}
