/**
 * Passwords are compared, measured and hashed in NFKC form so that the same password typed on
 * different keyboards or input methods (full-width Latin, ligatures, composed vs decomposed
 * accents) is the same password. [NIST SP 800-63B rev 4 §3.1.1.2]
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Length in Unicode code points, not UTF-16 code units: one emoji counts as one character. */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * True when `s` encodes to more than `maxBytes` bytes of UTF-8. A UTF-16 code unit never encodes
 * to fewer than one byte, so a string longer than the cap is rejected without scanning it.
 */
export function exceedsByteCap(s: string, maxBytes: number): boolean {
  if (s.length > maxBytes) return true;
  return Buffer.byteLength(s, 'utf8') > maxBytes;
}
