import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { LatchError } from '../../shared/errors.js';
import type { SecretBox } from '../../shared/secret-box.js';

/** The asymmetric algorithms we sign with; anything else is refused at every step (RFC 8725 3.1). */
export type SigningAlgorithm = 'EdDSA' | 'ES256';
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['EdDSA', 'ES256'];

export const isSigningAlgorithm = (alg: unknown): alg is SigningAlgorithm =>
  typeof alg === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(alg);

/** The public members that may appear in a JWKS entry; `d` and friends never do. */
const PUBLIC_MEMBERS: Record<SigningAlgorithm, readonly string[]> = {
  EdDSA: ['kty', 'crv', 'x'],
  ES256: ['kty', 'crv', 'x', 'y'],
};

export interface GeneratedKey {
  kid: string;
  algorithm: SigningAlgorithm;
  publicJwk: JWK;
  privateKeyEnc: Buffer;
}

/** The aad binds a sealed private key to its row: a blob copied under another kid will not open. */
export const sealAad = (kid: string) => `signing-key:${kid}`;

/** 128 random bits, base64url: unguessable and unrelated to the key itself. */
export const newKid = () => randomBytes(16).toString('base64url');

export async function generateSigningKey(algorithm: SigningAlgorithm, box: SecretBox): Promise<GeneratedKey> {
  const kid = newKid();
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const publicJwk = publicJwkOf(algorithm, kid, await exportJWK(publicKey));
  const privateKeyEnc = box.seal(Buffer.from(JSON.stringify(privateJwk), 'utf8'), sealAad(kid));
  return { kid, algorithm, publicJwk, privateKeyEnc };
}

/** Keeps only the public members and adds kid/alg/use, so a JWKS entry can never leak `d`. */
export function publicJwkOf(algorithm: SigningAlgorithm, kid: string, jwk: JWK): JWK {
  const src = jwk as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const m of PUBLIC_MEMBERS[algorithm]) {
    if (typeof src[m] !== 'string') throw new Error(`public JWK lacks "${m}"`);
    out[m] = src[m];
  }
  return { ...out, kid, alg: algorithm, use: 'sig' } as JWK;
}

export async function importPublicKey(algorithm: SigningAlgorithm, jwk: JWK): Promise<CryptoKey> {
  const { d: _private, ...pub } = jwk;
  return (await importJWK(pub, algorithm)) as CryptoKey;
}

/**
 * Opens the sealed private key of `kid`. A failure here almost always means the process runs with
 * another secret-encryption key than the one that sealed the row, so the error says exactly that.
 */
export async function importPrivateKey(
  kid: string,
  algorithm: SigningAlgorithm,
  sealed: Uint8Array,
  box: SecretBox,
): Promise<CryptoKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(box.open(sealed, sealAad(kid)).toString('utf8')) as JWK;
  } catch (cause) {
    throw new LatchError(
      'failed_precondition',
      'ERR_SIGNING_KEY_UNREADABLE',
      `signing key ${kid} cannot be decrypted: SECRET_ENCRYPTION_KEY is not the key that sealed it ` +
        '(restore the original key, or delete the rows of signing_keys to start over with new keys)',
      { cause },
    );
  }
  if (typeof jwk.d !== 'string') {
    throw new LatchError('failed_precondition', 'ERR_SIGNING_KEY_UNREADABLE', `signing key ${kid} holds no private key`);
  }
  // Not extractable: once imported, the private key cannot be read back out of this process.
  return (await importJWK(jwk, algorithm, { extractable: false })) as CryptoKey;
}
