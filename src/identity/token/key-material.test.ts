import { randomBytes } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../../shared/secret-box.js';
import { generateSigningKey, importPrivateKey, importPublicKey, isSigningAlgorithm, publicJwkOf } from './key-material.js';

const box = () => new SecretBox(randomBytes(32));

describe('signing key material', () => {
  it.each(['EdDSA', 'ES256'] as const)('%s: sealed private key signs, public JWK verifies', async (alg) => {
    const b = box();
    const k = await generateSigningKey(alg, b);
    expect(k.kid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(k.publicJwk).not.toHaveProperty('d');
    expect(k.publicJwk).toMatchObject({ kid: k.kid, alg, use: 'sig' });
    const priv = await importPrivateKey(k.kid, alg, k.privateKeyEnc, b);
    expect(priv.extractable).toBe(false);
    const jws = await new CompactSign(new TextEncoder().encode('hi')).setProtectedHeader({ alg }).sign(priv);
    const { payload } = await compactVerify(jws, await importPublicKey(alg, k.publicJwk));
    expect(new TextDecoder().decode(payload)).toBe('hi');
  });

  it('a wrong box or another kid cannot open the sealed key', async () => {
    const b = box();
    const k = await generateSigningKey('EdDSA', b);
    await expect(importPrivateKey(k.kid, 'EdDSA', k.privateKeyEnc, box())).rejects.toMatchObject({
      kind: 'failed_precondition',
      id: 'ERR_SIGNING_KEY_UNREADABLE',
      message: expect.stringMatching(/SECRET_ENCRYPTION_KEY/),
    });
    await expect(importPrivateKey('other-kid', 'EdDSA', k.privateKeyEnc, b)).rejects.toMatchObject({ id: 'ERR_SIGNING_KEY_UNREADABLE' });
  });

  it('publicJwkOf drops private and unknown members', () => {
    const jwk = publicJwkOf('ES256', 'k1', { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'secret', p: 'q', use: 'enc' });
    expect(jwk).toEqual({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1', alg: 'ES256', use: 'sig' });
    expect(() => publicJwkOf('EdDSA', 'k', { kty: 'OKP', crv: 'Ed25519' })).toThrow(/lacks "x"/);
  });

  it('only EdDSA and ES256 are signing algorithms', () => {
    expect(['EdDSA', 'ES256'].every(isSigningAlgorithm)).toBe(true);
    for (const a of ['none', 'HS256', 'RS256', 'Ed25519', 'es256', '', undefined, 1]) expect(isSigningAlgorithm(a)).toBe(false);
  });
});
