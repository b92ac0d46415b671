import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Document names that exist only outside the repository; the project's own are docs/*.md in lower case. */
export const OUTSIDE_DOCUMENTS = ['SECURITY.md', 'API.md', 'ARCHITECTURE.md', 'FIELD-NOTES.md', 'STYLE.md'];

/**
 * Files that may name outside documents: docs telling the design's history (docs/history.md,
 * docs/decisions/, ...), and the check itself, which spells the names out to look for them.
 */
export function mayReferToOutside(file: string): boolean {
  return /^docs\/[^/]*(histor|decision)/i.test(file) || /^test\/architecture\/outside-references(\.test)?\.ts$/.test(file);
}

export interface OutsideReference {
  file: string;
  line: number;
  reference: string;
}

const documentPattern = new RegExp(`(?<![\\w.-])(?:${OUTSIDE_DOCUMENTS.map((d) => d.replace(/[.-]/g, '\\$&')).join('|')})(?![\\w-])`, 'g');
const sharedPattern = /(?:\.\.\/)+shared\b/g;

/**
 * Outside references in one file. `../shared` counts only where it leaves the repository or leads
 * nowhere: `../../shared/config.js` in src/identity is src/shared and fine.
 */
export function findOutsideReferences(
  file: string,
  text: string,
  directoryExists: (repoPath: string) => boolean,
): OutsideReference[] {
  const found: OutsideReference[] = [];
  text.split('\n').forEach((content, i) => {
    for (const m of content.matchAll(documentPattern)) found.push({ file, line: i + 1, reference: m[0] });
    for (const m of content.matchAll(sharedPattern)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[0]));
      if (target.startsWith('../') || !directoryExists(target)) found.push({ file, line: i + 1, reference: m[0] });
    }
  });
  return found;
}

/** Tracked files and new ones not yet added (but not ignored ones), that still exist. */
export function repositoryFiles(root: string): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return [...new Set(out.split('\0').filter(Boolean))].filter((f) => statSync(path.join(root, f), { throwIfNoEntry: false })?.isFile()).sort();
}

export function scanRepository(root: string): OutsideReference[] {
  const directoryExists = (p: string) => statSync(path.join(root, p), { throwIfNoEntry: false })?.isDirectory() ?? false;
  return repositoryFiles(root)
    .filter((f) => !mayReferToOutside(f))
    .flatMap((f) => {
      const bytes = readFileSync(path.join(root, f));
      if (bytes.includes(0)) return []; // binary
      return findOutsideReferences(f, bytes.toString('utf8'), directoryExists);
    });
}
