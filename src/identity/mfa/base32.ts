/** RFC 4648 §6 base32, the encoding authenticator apps expect for TOTP secrets. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const VALUES = new Map([...ALPHABET].map((c, i) => [c, i]));

/** Unpadded upper-case base32 (otpauth URIs omit the padding). */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes base32 as people and apps write it: any case, optional `=` padding, spaces allowed.
 * Throws RangeError on any other character or on a length no encoder produces.
 */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/\s+/g, '').replace(/=+$/, '').toUpperCase();
  // 1, 3 and 6 trailing characters cannot come from whole bytes (RFC 4648 §6 final quanta).
  if ([1, 3, 6].includes(clean.length % 8)) throw new RangeError('base32 input has an impossible length');
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const c of clean) {
    const v = VALUES.get(c);
    if (v === undefined) throw new RangeError('base32 input has a character outside the RFC 4648 alphabet');
    buffer = (buffer << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >>> bits) & 0xff);
    }
    buffer &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}
