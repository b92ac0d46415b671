/**
 * Shapes that make a long password weak however it scores on length: one character repeated,
 * a run of consecutive characters ("abcdef…", "1234567890123…", "zyxw…"), or a short unit
 * repeated to pad the length ("abcabcabc…"). Input is the NFKC, lower-cased password as code points.
 */

const DIGITS = { lo: 0x30, size: 10 };
const LETTERS = { lo: 0x61, size: 26 };

function alphabetOf(cp: number): { lo: number; size: number } | undefined {
  if (cp >= DIGITS.lo && cp < DIGITS.lo + DIGITS.size) return DIGITS;
  if (cp >= LETTERS.lo && cp < LETTERS.lo + LETTERS.size) return LETTERS;
  return undefined;
}

/** Step from a to b, wrapping inside 0-9 and a-z so "…7890123…" and "…xyzabc…" count as runs. */
function step(a: number, b: number): number {
  const alphabet = alphabetOf(a);
  if (alphabet !== undefined && alphabet === alphabetOf(b)) {
    const d = (b - a + alphabet.size) % alphabet.size;
    return d === alphabet.size - 1 ? -1 : d;
  }
  return b - a;
}

/** Every character one more (or one less) than the one before it, or all the same character. */
export function isSimpleSequence(cps: readonly number[]): boolean {
  if (cps.length < 3) return false;
  const first = step(cps[0]!, cps[1]!);
  if (first !== 0 && first !== 1 && first !== -1) return false;
  for (let i = 2; i < cps.length; i++) {
    if (step(cps[i - 1]!, cps[i]!) !== first) return false;
  }
  return true;
}

/**
 * The shortest unit the password repeats (a trailing partial copy allowed), or the whole
 * password when it repeats nothing. "passwordpasswordpa" → "password" (8 code points).
 */
export function repeatedUnitLength(cps: readonly number[]): number {
  for (let p = 1; p <= cps.length / 2; p++) {
    let repeats = true;
    for (let i = p; i < cps.length; i++) {
      if (cps[i] !== cps[i - p]) {
        repeats = false;
        break;
      }
    }
    if (repeats) return p;
  }
  return cps.length;
}
