import { CompactSign, decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessTokens } from '../../src/identity/token/access-token.js';
import type { SigningKeyStore } from '../../src/identity/token/key-store.js';
import { AUDIENCE, b64json, ISSUER, sampleInput, T0, TokenWorld, TTL_SECONDS } from './fixture.js';

const enc = new TextEncoder();

/** Signs arbitrary header/claims, so each test varies exactly one thing from a valid token. */
async function signRaw(header: Record<string, unknown>, payload: Record<string, unknown>, key: CryptoKey | Uint8Array) {
  return new CompactSign(enc.encode(JSON.stringify(payload))).setProtectedHeader(header as never).sign(key);
}

describe('access tokens: claims, algorithms, types and time (docs/security.md T1-T4)', () => {
  let world: TokenWorld;
  let store: SigningKeyStore;
  let tokens: AccessTokens;
  let kid: string;
  let privateKey: CryptoKey;
  let publicJwk: JWK;

  const nowSec = () => Math.floor(world.clock.nowMs() / 1000);
  const claims = (over: Record<string, unknown> = {}) => ({
    iss: ISSUER,
    sub: 'user-1',
    aud: AUDIENCE,
    exp: nowSec() + 600,
    iat: nowSec(),
    jti: 'jti-1',
    client_id: 'latch',
    role: 'user',
    sid: 'session-1',
    amr: ['pwd'],
    ...over,
  });
  const header = (over: Record<string, unknown> = {}) => ({ alg: 'EdDSA', kid, typ: 'at+jwt', ...over });

  beforeAll(async () => {
    world = await TokenWorld.create();
    store = await world.openStore();
    tokens = world.accessTokens(store);
    ({ kid, key: privateKey } = store.signingKey());
    publicJwk = (JSON.parse(store.jwksJson()) as { keys: JWK[] }).keys[0]!;
  });
  afterAll(() => world?.close());

  it('the forging harness itself produces a token that verifies (control)', async () => {
    expect(await tokens.verify(await signRaw(header(), claims(), privateKey))).toMatchObject({ sub: 'user-1', sid: 'session-1' });
  });

  it('a remembered token is answered without a promise; another payload under its signature is still refused', async () => {
    const cached = new AccessTokens(store, { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: TTL_SECONDS, clock: world.clock, cacheSize: 10 });
    const token = await signRaw(header(), claims(), privateKey);
    const first = cached.verify(token);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ sub: 'user-1' });
    const again = cached.verify(token);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ sub: 'user-1' });
    // The cache finds entries by the token's tail (its signature): a token that shares it but
    // carries other claims must go through full verification, and fail it.
    const [h, , sig] = token.split('.');
    const forged = `${h}.${b64json(claims({ sub: 'user-2', role: 'admin' }))}.${sig}`;
    expect(forged.slice(-32)).toBe(token.slice(-32));
    expect(await cached.verify(forged)).toBeNull();
    expect(cached.verify(token)).toMatchObject({ sub: 'user-1' });
  });

  describe('T1 claims and header', () => {
    it('carries typ at+jwt, alg and kid, and every RFC 9068 2.2 claim', async () => {
      world.clock.set(T0);
      const issued = await tokens.issue(sampleInput);
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg: 'EdDSA', kid, typ: 'at+jwt' });
      const p = decodeJwt(issued.token);
      expect(p).toEqual({
        iss: ISSUER,
        sub: sampleInput.userId,
        aud: AUDIENCE,
        exp: Math.floor(T0 / 1000) + TTL_SECONDS,
        iat: Math.floor(T0 / 1000),
        iat_ms: T0,
        jti: issued.jti,
        client_id: 'latch',
        role: 'user',
        sid: sampleInput.sessionId,
        amr: ['pwd'],
      });
      expect(issued).toMatchObject({ issuedAtMs: T0, expiresAtMs: (Math.floor(T0 / 1000) + TTL_SECONDS) * 1000 });
      expect(issued.jti).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    });

    it('iat is whole seconds; the issue instant keeps millisecond precision in iat_ms', async () => {
      world.clock.set(T0);
      const { token } = await tokens.issue(sampleInput);
      expect(token.split('.')[1]).toBe(b64json(decodeJwt(token)));
      expect(decodeJwt(token).iat).toBe(1764067200);
      expect(decodeJwt(token).iat_ms).toBe(T0);
      const v = await tokens.verify(token);
      expect(v).toEqual({
        sub: sampleInput.userId,
        role: 'user',
        sid: sampleInput.sessionId,
        amr: ['pwd'],
        passwordMustChange: false,
        jti: decodeJwt(token).jti,
        iatMs: T0,
        expMs: (Math.floor(T0 / 1000) + TTL_SECONDS) * 1000,
        iss: ISSUER,
        aud: AUDIENCE,
        clientId: 'latch',
      });
    });

    it('pmc appears only when the password must change; client_id can be set; jti is unique', async () => {
      const a = await tokens.issue(sampleInput);
      const b = await tokens.issue({ ...sampleInput, passwordMustChange: true, clientId: 'admin-console', amr: ['pwd', 'otp'] });
      expect(decodeJwt(a.token)).not.toHaveProperty('pmc');
      expect(decodeJwt(b.token)).toMatchObject({ pmc: true, client_id: 'admin-console', amr: ['pwd', 'otp'] });
      expect(await tokens.verify(b.token)).toMatchObject({ passwordMustChange: true, clientId: 'admin-console' });
      expect(a.jti).not.toBe(b.jti);
    });

    it.each(['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'client_id', 'role', 'sid', 'amr'])('a token without %s is rejected', async (c) => {
      const p: Record<string, unknown> = claims();
      delete p[c];
      expect(await tokens.verify(await signRaw(header(), p, privateKey))).toBeNull();
    });

    it.each([
      ['wrong issuer', () => ({ iss: 'https://evil.test' })],
      ['wrong audience', () => ({ aud: 'other-api' })],
      ['non-string sub', () => ({ sub: 42 })],
      ['empty sid', () => ({ sid: '' })],
      ['amr not an array of strings', () => ({ amr: 'pwd' })],
      ['pmc not true', () => ({ pmc: 'yes' })],
      ['iat far in the future', () => ({ iat: nowSec() + 3600 })],
      ['non-numeric exp', () => ({ exp: String(nowSec() + 600) })],
    ])('%s is rejected', async (_name, over) => {
      expect(await tokens.verify(await signRaw(header(), claims(over()), privateKey))).toBeNull();
    });

    it('an audience array containing ours is accepted (RFC 7519 4.1.3)', async () => {
      expect(await tokens.verify(await signRaw(header(), claims({ aud: ['x', AUDIENCE] }), privateKey))).not.toBeNull();
    });
  });

  describe('T2 algorithms and key sources (RFC 8725 3.1, 3.2, 3.10)', () => {
    it('alg none is rejected, with or without a signature part', async () => {
      const unsigned = `${b64json(header({ alg: 'none' }))}.${b64json(claims())}.`;
      expect(await tokens.verify(unsigned)).toBeNull();
      const real = await signRaw(header(), claims(), privateKey);
      expect(await tokens.verify(`${b64json(header({ alg: 'none' }))}.${b64json(claims())}.${real.split('.')[2]}`)).toBeNull();
    });

    it('HS256 keyed with our public key (JWK JSON, PEM, raw bytes) is rejected', async () => {
      const pem = await exportSPKI((await importJWK(publicJwk, 'EdDSA', { extractable: true })) as CryptoKey);
      expect(pem).toContain('BEGIN PUBLIC KEY');
      const secrets = [
        enc.encode(JSON.stringify(publicJwk)),
        enc.encode(store.jwksJson()),
        enc.encode(pem),
        enc.encode(pem.trim()),
        Buffer.from(publicJwk.x!, 'base64url'),
      ];
      for (const secret of secrets) {
        const forged = await signRaw(header({ alg: 'HS256' }), claims(), secret);
        expect(await tokens.verify(forged)).toBeNull();
      }
    });

    it('RS256 and other algorithms under our kid are rejected', async () => {
      for (const alg of ['RS256', 'PS256', 'ES384', 'ES256K'] as const) {
        const { privateKey: k } = await generateKeyPair(alg).catch(() => ({ privateKey: null }));
        if (!k) continue; // not every runtime has every curve
        expect(await tokens.verify(await signRaw(header({ alg }), claims(), k))).toBeNull();
      }
      expect(await tokens.verify(await signRaw(header({ alg: 'Ed25519' }), claims(), privateKey))).toBeNull();
    });

    it('a header alg that differs from the kid’s algorithm is rejected (EdDSA and ES256 keys side by side)', async () => {
      const w = await TokenWorld.create();
      try {
        const ed = await w.openStore({ algorithm: 'EdDSA' });
        const edKid = ed.signingKey().kid;
        const es = await w.openStore({ algorithm: 'ES256' });
        await es.rotateNow();
        await ed.reload();
        const esKid = es.signingKey().kid;
        expect(es.signingKey().alg).toBe('ES256');
        const t = w.accessTokens(ed);
        const c = { ...claims(), exp: Math.floor(w.clock.nowMs() / 1000) + 600, iat: Math.floor(w.clock.nowMs() / 1000) };
        // Both keys verify their own tokens.
        expect(await t.verify((await w.accessTokens(es).issue(sampleInput)).token)).not.toBeNull();
        const edKeyStill = ed.verificationKey(edKid);
        expect(edKeyStill?.alg).toBe('EdDSA');
        // Attacker keys of the "other" algorithm, claiming our kids.
        const atkEs = (await generateKeyPair('ES256')).privateKey;
        const atkEd = (await generateKeyPair('EdDSA')).privateKey;
        expect(await t.verify(await signRaw({ alg: 'ES256', kid: edKid, typ: 'at+jwt' }, c, atkEs))).toBeNull();
        expect(await t.verify(await signRaw({ alg: 'EdDSA', kid: esKid, typ: 'at+jwt' }, c, atkEd))).toBeNull();
      } finally {
        await w.close();
      }
    });

    it('jku, x5u, jwk, x5c, x5t and crit headers are rejected even on a valid signature', async () => {
      const { privateKey: atk, publicKey: atkPub } = await generateKeyPair('EdDSA', { extractable: true });
      const { exportJWK } = await import('jose');
      const cases: Record<string, unknown>[] = [
        { jku: 'https://evil.test/jwks.json' },
        { x5u: 'https://evil.test/cert.pem' },
        { jwk: publicJwk },
        { x5c: ['MIIB'] },
        { x5t: 'abc' },
        { cty: 'JWT' },
      ];
      for (const extra of cases) {
        expect(await tokens.verify(await signRaw(header(extra), claims(), privateKey))).toBeNull();
      }
      // jose refuses to produce an unknown crit, so this one is signed by hand (RFC 7515 5.1).
      const critInput = `${b64json(header({ crit: ['exp'], exp: 1 }))}.${b64json(claims())}`;
      const critSig = Buffer.from(await crypto.subtle.sign('Ed25519', privateKey, enc.encode(critInput)));
      const handSigned = `${b64json(header())}.${b64json(claims())}`;
      const handSig = Buffer.from(await crypto.subtle.sign('Ed25519', privateKey, enc.encode(handSigned)));
      expect(await tokens.verify(`${handSigned}.${handSig.toString('base64url')}`)).not.toBeNull();
      expect(await tokens.verify(`${critInput}.${critSig.toString('base64url')}`)).toBeNull();
      // The classic embedded-key attack: the attacker's own key in the header, signed with it.
      const embedded = await signRaw({ alg: 'EdDSA', typ: 'at+jwt', jwk: await exportJWK(atkPub) }, claims(), atk);
      expect(await tokens.verify(embedded)).toBeNull();
      const embeddedWithKid = await signRaw(header({ jwk: await exportJWK(atkPub) }), claims(), atk);
      expect(await tokens.verify(embeddedWithKid)).toBeNull();
    });

    it('unknown, missing or odd kids are rejected', async () => {
      for (const k of ['nope', '', undefined, 42, '__proto__', 'constructor', 'x'.repeat(500)]) {
        expect(await tokens.verify(await signRaw({ alg: 'EdDSA', typ: 'at+jwt', kid: k }, claims(), privateKey))).toBeNull();
      }
    });

    it('a signature by another key under our kid is rejected', async () => {
      const { privateKey: other } = await generateKeyPair('EdDSA');
      expect(await tokens.verify(await signRaw(header(), claims(), other))).toBeNull();
      const good = await signRaw(header(), claims(), privateKey);
      const [h, p, s] = good.split('.');
      const flipped = Buffer.from(s!, 'base64url');
      flipped[0]! ^= 1;
      expect(await tokens.verify(`${h}.${p}.${flipped.toString('base64url')}`)).toBeNull();
      expect(await tokens.verify(`${h}.${b64json(claims({ role: 'admin' }))}.${s}`)).toBeNull();
    });

    it('garbage never throws', async () => {
      const junk = ['', 'x', 'a.b.c', '...', 'a.b.c.d.e', '.'.repeat(10), `${b64json(header())}.!!!.###`, 'eyJ.eyJ.x', 'x'.repeat(20_000)];
      for (const j of junk) expect(await tokens.verify(j)).toBeNull();
      expect(await tokens.verify(null as unknown as string)).toBeNull();
      expect(await tokens.verify(`${b64json(['array'])}.${b64json(claims())}.sig`)).toBeNull();
    });
  });

  describe('T3 token types (RFC 8725 3.11)', () => {
    it('a correctly signed token of another typ, or none, is not an access token', async () => {
      expect(await tokens.verify(await signRaw(header({ typ: 'mfa-challenge+jwt' }), claims(), privateKey))).toBeNull();
      for (const typ of [undefined, 'JWT', 'jwt', 'refresh+jwt', 'at+jwt+x', 'application/jwt']) {
        const h = header();
        if (typ === undefined) delete (h as Record<string, unknown>).typ;
        else h.typ = typ;
        expect(await tokens.verify(await signRaw(h, claims(), privateKey))).toBeNull();
      }
      // RFC 9068 4 names both spellings of the media type.
      expect(await tokens.verify(await signRaw(header({ typ: 'application/at+jwt' }), claims(), privateKey))).not.toBeNull();
    });
  });

  describe('T4 time, with an injected clock', () => {
    it('expired by leeway-1 s is valid, by leeway+1 s is not (default leeway 30 s)', async () => {
      world.clock.set(T0);
      const { token, expiresAtMs } = await tokens.issue(sampleInput);
      world.clock.set(expiresAtMs - 1);
      expect(await tokens.verify(token)).not.toBeNull();
      world.clock.set(expiresAtMs + 29_000);
      expect(await tokens.verify(token)).not.toBeNull();
      world.clock.set(expiresAtMs + 31_000);
      expect(await tokens.verify(token)).toBeNull();
      world.clock.set(T0);
    });

    it('with leeway 0 a token is dead at exp', async () => {
      world.clock.set(T0);
      const strict = world.accessTokens(store, 0);
      const { token, expiresAtMs } = await strict.issue(sampleInput);
      world.clock.set(expiresAtMs - 1000);
      expect(await strict.verify(token)).not.toBeNull();
      world.clock.set(expiresAtMs);
      expect(await strict.verify(token)).toBeNull();
      world.clock.set(T0);
    });

    it('nbf beyond the leeway is rejected, within it accepted', async () => {
      world.clock.set(T0);
      expect(await tokens.verify(await signRaw(header(), claims({ nbf: nowSec() + 31 }), privateKey))).toBeNull();
      expect(await tokens.verify(await signRaw(header(), claims({ nbf: nowSec() + 29 }), privateKey))).not.toBeNull();
      expect(await tokens.verify(await signRaw(header(), claims({ nbf: 'soon' }), privateKey))).toBeNull();
    });

    it('leeway can never exceed 60 s', () => {
      expect(() => world.accessTokens(store, 61)).toThrow(RangeError);
      expect(() => world.accessTokens(store, -1)).toThrow(RangeError);
      expect(() => world.accessTokens(store, Number.NaN)).toThrow(RangeError);
      expect(world.accessTokens(store, 60)).toBeInstanceOf(AccessTokens);
    });
  });
});
