import { randomBytes } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../../shared/secret-box.js';
import { generateSigningKey, importPrivateKey, importPublicKey } from './key-material.js';
import type { SigningKeyStore } from './key-store.js';
import { signJwt } from './strict-jwt.js';

describe('signJwt', () => {
  it.each(['EdDSA', 'ES256'] as const)('%s: a compact JWS with exactly { alg, kid, typ } that the public JWK verifies', async (alg) => {
    const box = new SecretBox(randomBytes(32));
    const k = await generateSigningKey(alg, box);
    const key = await importPrivateKey(k.kid, alg, k.privateKeyEnc, box);
    const keys = { acquireSigningKey: async () => ({ kid: k.kid, alg, key }) } as unknown as SigningKeyStore;
    const payload = { sub: 'u1', iat: 1_700_000_000, jti: 'j1', note: 'é' };

    const token = await signJwt(keys, 'at+jwt', payload);

    expect(token.split('.')).toHaveLength(3);
    expect(decodeProtectedHeader(token)).toEqual({ alg, kid: k.kid, typ: 'at+jwt' });
    const verified = await compactVerify(token, await importPublicKey(alg, k.publicJwk));
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual(payload);
    // A changed payload does not verify under the same signature.
    const [h, , sig] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'u2' })).toString('base64url')}.${sig}`;
    await expect(compactVerify(forged, await importPublicKey(alg, k.publicJwk))).rejects.toThrow();
  });
});
