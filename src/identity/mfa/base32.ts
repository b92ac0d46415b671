import { ScureBase32Plugin } from 'otplib';

/** RFC 4648 §6 base32, the encoding authenticator apps expect for TOTP secrets (otplib's codec). */
const codec = new ScureBase32Plugin();

/** Unpadded upper-case base32 (otpauth URIs omit the padding). */
export function base32Encode(bytes: Uint8Array): string {
  return codec.encode(bytes, { padding: false });
}

/**
 * Decodes base32 as people and apps write it: any case, optional `=` padding, spaces allowed.
 * Throws RangeError on any other character or on a length no encoder produces.
 */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/\s+/g, '').replace(/=+$/, '');
  try {
    return Buffer.from(codec.decode(clean));
  } catch {
    // The codec's own message quotes the offending character, and the input is usually a secret.
    throw new RangeError('base32 input is not RFC 4648 base32 (alphabet or length)');
  }
}
