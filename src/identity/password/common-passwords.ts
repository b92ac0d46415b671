import { readFileSync } from 'node:fs';
import { normalizePassword } from './normalize.js';

let cached: ReadonlySet<string> | undefined;

/**
 * The shipped list of the most common passwords (common-passwords.txt, one per line), in the
 * same form candidates are compared in: NFKC, lower case. Read once, on first use; entries shorter
 * than 8 code points are not listed because no configurable minimum lets them through anyway.
 */
export function commonPasswords(): ReadonlySet<string> {
  if (cached === undefined) {
    const text = readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8');
    const set = new Set<string>();
    for (const line of text.split('\n')) {
      const entry = normalizePassword(line.trim()).toLowerCase();
      if (entry !== '') set.add(entry);
    }
    cached = set;
  }
  return cached;
}
