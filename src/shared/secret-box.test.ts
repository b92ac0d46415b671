import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from './secret-box.js';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips and never stores the plaintext', () => {
    const sealed = box.seal(Buffer.from('JBSWY3DPEHPK3PXP'), 'totp:u1');
    expect(sealed.includes(Buffer.from('JBSWY3DPEHPK3PXP'))).toBe(false);
    expect(box.open(sealed, 'totp:u1').toString()).toBe('JBSWY3DPEHPK3PXP');
  });

  it('refuses another purpose, a flipped bit and another key', () => {
    const sealed = box.seal(Buffer.from('secret'), 'a');
    expect(() => box.open(sealed, 'b')).toThrow();
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    expect(() => box.open(flipped, 'a')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'a')).toThrow();
  });
});
