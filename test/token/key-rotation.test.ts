import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, type JWK } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isLatchError } from '../../src/shared/errors.js';
import { SigningKeyEntity } from '../../src/identity/token/signing-key.entity.js';
import { MAX_LEEWAY_MS } from '../../src/identity/token/key-store.js';
import { b64json, HOUR_MS, ISSUER, newBox, sampleInput, T0, TokenWorld, TTL_SECONDS } from './fixture.js';

const kidsOf = (jwks: string) => (JSON.parse(jwks) as { keys: JWK[] }).keys.map((k) => k.kid);
const kidOf = (token: string) => decodeProtectedHeader(token).kid;

describe('signing keys: rotation, publication and replicas (docs/security.md T5)', () => {
  let world: TokenWorld | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('creates one key on a fresh database; the JWKS holds only public members', async () => {
    world = await TokenWorld.create();
    const store = await world.openStore();
    const jwks = JSON.parse(store.jwksJson()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    const [k] = jwks.keys;
    expect(Object.keys(k!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(k).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: store.signingKey().kid });
    expect(store.signingKey().kid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(store.jwksJson()).not.toContain('"d"');

    const rows = await world.orm.em.fork().find(SigningKeyEntity, {});
    expect(rows).toHaveLength(1);
    expect(rows[0]!.publicJwk).not.toHaveProperty('d');
    expect(rows[0]!.signUntil.getTime()).toBe(T0 + HOUR_MS);
    expect(rows[0]!.publishUntil.getTime()).toBe(T0 + HOUR_MS + TTL_SECONDS * 1000 + MAX_LEEWAY_MS);
    // The sealed private key is not the plain JWK.
    expect(Buffer.from(rows[0]!.privateKeyEnc).toString('latin1')).not.toContain('"d"');
  });

  it('an ES256 store publishes EC keys without d', async () => {
    world = await TokenWorld.create();
    const store = await world.openStore({ algorithm: 'ES256' });
    const [k] = (JSON.parse(store.jwksJson()) as { keys: Record<string, unknown>[] }).keys;
    expect(Object.keys(k!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(k).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    const tokens = world.accessTokens(store);
    expect(await tokens.verify((await tokens.issue(sampleInput)).token)).not.toBeNull();
  });

  it('rotateNow: old tokens still verify, JWKS holds both keys until the old one’s tokens have expired', async () => {
    world = await TokenWorld.create();
    const store = await world.openStore();
    const tokens = world.accessTokens(store);
    const before = await tokens.issue(sampleInput);
    const oldKid = kidOf(before.token);

    world.clock.advance(60_000);
    await store.rotateNow();
    const after = await tokens.issue(sampleInput);
    const newKid = kidOf(after.token);
    expect(newKid).not.toBe(oldKid);
    expect(store.signingKey().kid).toBe(newKid);
    expect(await tokens.verify(before.token)).not.toBeNull();
    expect(await tokens.verify(after.token)).not.toBeNull();
    expect(kidsOf(store.jwksJson()).sort()).toEqual([oldKid, newKid].sort());

    const old = await world.orm.em.fork().findOneOrFail(SigningKeyEntity, { kid: oldKid });
    const rotatedAt = T0 + 60_000;
    expect(old.signUntil.getTime()).toBe(rotatedAt);
    // A token signed just before the rotation can live TTL (+ leeway); other replicas may sign
    // with the old key until their next reload, so that is covered too.
    expect(old.publishUntil.getTime()).toBe(rotatedAt + TTL_SECONDS * 1000 + MAX_LEEWAY_MS + 60_000);
    expect(old.publishUntil.getTime()).toBeGreaterThan(before.expiresAtMs + 30_000);

    world.clock.set(old.publishUntil.getTime() - 1);
    expect(kidsOf(store.jwksJson())).toContain(oldKid);
    world.clock.set(old.publishUntil.getTime() + 1);
    expect(kidsOf(store.jwksJson())).toEqual([newKid]);
    expect(store.verificationKey(oldKid as string)).toBeUndefined();
    expect(await tokens.verify(after.token)).toBeNull(); // expired by now as well
  });

  it('pre-publishes the successor before the current key stops signing, then switches without I/O', async () => {
    world = await TokenWorld.create();
    const store = await world.openStore({ prepublishMs: 10 * 60_000 });
    const first = store.signingKey().kid;
    world.clock.advance(HOUR_MS - 5 * 60_000); // inside the pre-publication window
    expect(store.signingKey().kid).toBe(first); // still signs, and triggers creation of the next key
    await vi.waitFor(() => expect(kidsOf(store.jwksJson())).toHaveLength(2));
    const next = kidsOf(store.jwksJson()).find((k) => k !== first)!;
    expect(store.signingKey().kid).toBe(first);
    const row = await world.orm.em.fork().findOneOrFail(SigningKeyEntity, { kid: next });
    expect(row.signUntil.getTime()).toBe(T0 + 2 * HOUR_MS); // continues where the first stops

    world.clock.set(T0 + HOUR_MS); // first key's signUntil reached
    expect(store.signingKey().kid).toBe(next);
    expect(store.verificationKey(first)).toBeDefined();
    expect(await world.orm.em.fork().count(SigningKeyEntity, {})).toBe(2);
  });

  it('creates a key when the current one has lapsed (a replica that slept through rotation)', async () => {
    world = await TokenWorld.create();
    const store = await world.openStore();
    const tokens = world.accessTokens(store);
    const first = store.signingKey().kid;
    world.clock.advance(3 * HOUR_MS);
    const issued = await tokens.issue(sampleInput);
    expect(kidOf(issued.token)).not.toBe(first);
    expect(await tokens.verify(issued.token)).not.toBeNull();
  });

  it('a second replica verifies the first one’s tokens and picks up its rotation on an unknown kid', async () => {
    world = await TokenWorld.create();
    const a = await world.openStore();
    const aTokens = world.accessTokens(a);
    const b = await world.openReplica();
    expect(b.store.signingKey().kid).toBe(a.signingKey().kid); // no second key was created
    const t1 = await aTokens.issue(sampleInput);
    expect(await b.tokens.verify(t1.token)).not.toBeNull();

    await a.rotateNow();
    const t2 = await aTokens.issue(sampleInput);
    expect(b.store.verificationKey(kidOf(t2.token) as string)).toBeUndefined(); // not seen yet
    expect(await b.tokens.verify(t2.token)).not.toBeNull(); // reload on unknown kid
    expect(b.store.signingKey().kid).toBe(kidOf(t2.token)); // and signs with the new key too
    expect(await b.tokens.verify(t1.token)).not.toBeNull();
    expect(b.store.jwksJson()).toBe(a.jwksJson());
  });

  it('a replica also picks up rotations with its periodic reload', async () => {
    world = await TokenWorld.create();
    const a = await world.openStore();
    const b = await world.openReplica({ reloadIntervalMs: 50 });
    await a.rotateNow();
    const newKid = a.signingKey().kid;
    await vi.waitFor(() => expect(b.store.signingKey().kid).toBe(newKid), { timeout: 5000 });
  });

  it('replicas starting together on an empty database create exactly one key', async () => {
    world = await TokenWorld.create();
    const stores = await Promise.all(Array.from({ length: 6 }, () => world!.openStore()));
    expect(new Set(stores.map((s) => s.signingKey().kid)).size).toBe(1);
    expect(await world.orm.em.fork().count(SigningKeyEntity, {})).toBe(1);
  });

  it('unknown kids reload the key table at most once per cooldown', async () => {
    world = await TokenWorld.create();
    const store = await world.openStore({ unknownKidCooldownMs: 60_000 });
    const tokens = world.accessTokens(store);
    const reload = vi.spyOn(store, 'reload');
    const { key } = store.signingKey();
    const { CompactSign } = await import('jose');
    const now = Math.floor(world.clock.nowMs() / 1000);
    for (let i = 0; i < 20; i++) {
      const payload = { iss: ISSUER, aud: 'latch-api', sub: 'u', exp: now + 60, iat: now, jti: 'j', client_id: 'c', role: 'r', sid: 's', amr: [] };
      const junk = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: randomBytes(16).toString('base64url') })
        .sign(key);
      expect(await tokens.verify(junk)).toBeNull();
    }
    expect(reload).toHaveBeenCalledTimes(1);
    // Implausible tokens (foreign issuer, expired) never reach the database at all.
    const fresh = await world.openStore({ unknownKidCooldownMs: 0 });
    const spy = vi.spyOn(fresh, 'reload');
    const foreign = `${b64json({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })}.${b64json({ iss: 'other', exp: now + 60 })}.AAAA`;
    const expired = `${b64json({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })}.${b64json({ iss: ISSUER, exp: now - 3600 })}.AAAA`;
    expect(await world.accessTokens(fresh).verify(foreign)).toBeNull();
    expect(await world.accessTokens(fresh).verify(expired)).toBeNull();
    expect(spy).not.toHaveBeenCalled();
  });

  it('database down: known kids still verify, an unknown kid is "unavailable", not "invalid"', async () => {
    world = await TokenWorld.create();
    const a = await world.openStore();
    const b = await world.openReplica();
    const known = await world.accessTokens(a).issue(sampleInput);
    await a.rotateNow();
    const unknown = await world.accessTokens(a).issue(sampleInput);
    await b.db.close();
    expect(await b.tokens.verify(known.token)).not.toBeNull();
    const err = await Promise.resolve()
      .then(() => b.tokens.verify(unknown.token))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(isLatchError(err) && err.kind === 'unavailable' && err.id === 'ERR_SIGNING_KEYS_UNAVAILABLE').toBe(true);
  });

  it('a wrong secret-encryption key stops start-up with a clear error', async () => {
    world = await TokenWorld.create();
    await world.openStore();
    const err = await world.openStore({ box: newBox() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isLatchError(err)).toBe(true);
    expect(err).toMatchObject({ kind: 'failed_precondition', id: 'ERR_SIGNING_KEY_UNREADABLE' });
    expect((err as Error).message).toMatch(/SECRET_ENCRYPTION_KEY/);
  });

  it('a sealed key moved to another row does not open (aad binds it to its kid)', async () => {
    world = await TokenWorld.create();
    const a = await world.openStore();
    const kid = a.signingKey().kid;
    await a.rotateNow();
    const em = world.orm.em.fork();
    const rows = await em.find(SigningKeyEntity, {}, { orderBy: { createdAt: 'asc' } });
    const newest = rows.find((r) => r.kid !== kid)!;
    const old = rows.find((r) => r.kid === kid)!;
    await em.nativeUpdate(SigningKeyEntity, { kid: newest.kid }, { privateKeyEnc: old.privateKeyEnc });
    await expect(world.openStore()).rejects.toMatchObject({ id: 'ERR_SIGNING_KEY_UNREADABLE' });
  });
});
