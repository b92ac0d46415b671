/**
 * Argon2 PHC strings: `$argon2id$v=19$m=19456,t=2,p=1$<salt b64>$<hash b64>` (the `v=` part is
 * absent in hashes made before version 1.3). The encoding fixes the order m,t,p[,keyid,data];
 * we always write that order, because argon2-cffi and the reference library refuse any other,
 * while node-argon2 0.45 writes m,p,t (ranisalt/node-argon2#559). Reading accepts either order.
 */
export interface Argon2Params {
  type: 'argon2d' | 'argon2i' | 'argon2id';
  version: number;
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
  saltBytes: number;
  hashBytes: number;
  /** Parameters written m,t,p first, as other Argon2 libraries require. */
  canonicalOrder: boolean;
}

const PHC = /^\$(argon2id|argon2i|argon2d)\$(?:v=(\d{1,4})\$)?([a-z]+=[A-Za-z0-9+/]+(?:,[a-z]+=[A-Za-z0-9+/]+)*)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
const NUMBER = /^\d{1,10}$/;

/** Bytes encoded by unpadded base64 of this length. */
const b64Bytes = (s: string) => Math.floor((s.length * 3) / 4);

/** Standard base64 without padding, as PHC strings use. */
export const phcBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

/** Parsed without running Argon2, so a corrupt or absurdly costly stored hash is caught first. */
export function parseArgon2Phc(phc: string): Argon2Params | undefined {
  const match = PHC.exec(phc);
  if (match === null) return undefined;
  const params = new Map<string, string>();
  for (const pair of match[3]!.split(',')) {
    const [key, value] = pair.split('=') as [string, string];
    if (params.has(key)) return undefined;
    params.set(key, value);
  }
  const m = params.get('m');
  const t = params.get('t');
  const p = params.get('p');
  if (m === undefined || t === undefined || p === undefined) return undefined;
  if (!NUMBER.test(m) || !NUMBER.test(t) || !NUMBER.test(p)) return undefined;
  return {
    type: match[1] as Argon2Params['type'],
    version: match[2] === undefined ? 0x10 : Number(match[2]),
    memoryKiB: Number(m),
    timeCost: Number(t),
    parallelism: Number(p),
    saltBytes: b64Bytes(match[4]!),
    hashBytes: b64Bytes(match[5]!),
    canonicalOrder: /^m=\d+,t=\d+,p=\d+(?:,|$)/.test(match[3]!),
  };
}

export interface Argon2idEncoding {
  memoryKiB: number;
  timeCost: number;
  parallelism: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

/** Argon2id v1.3 PHC string with the parameters in the order the encoding prescribes. */
export function formatArgon2idPhc(e: Argon2idEncoding): string {
  return `$argon2id$v=19$m=${e.memoryKiB},t=${e.timeCost},p=${e.parallelism}$${phcBase64(e.salt)}$${phcBase64(e.hash)}`;
}
