import { performance } from 'node:perf_hooks';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { JWK } from 'jose';
import type { Clock } from '../../shared/clock.js';
import { LatchError, unavailable } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SecretBox } from '../../shared/secret-box.js';
import {
  generateSigningKey,
  importPrivateKey,
  importPublicKey,
  isSigningAlgorithm,
  publicJwkOf,
  type SigningAlgorithm,
} from './key-material.js';
import { SigningKeyEntity } from './signing-key.entity.js';

/** Serialises key creation across replicas (pg_advisory_xact_lock); an arbitrary constant owned by this file. */
const SIGNING_KEY_LOCK = '7310955541920512001';
/** The largest clock leeway any verifier of ours accepts (docs/security.md T4). */
export const MAX_LEEWAY_MS = 60_000;
const DAY_MS = 86_400_000;
/** Rows whose publication ended this long ago are deleted when a key is created. */
const PURGE_AFTER_MS = 7 * DAY_MS;

export interface SigningKeyStoreOptions {
  orm: MikroORM;
  box: SecretBox;
  /** Algorithm of newly created keys; existing keys keep theirs until they retire. */
  algorithm: SigningAlgorithm;
  /** How long a key signs. */
  rotationMs: number;
  /** The longest access-token life: a retired key stays published this long (plus leeway). */
  accessTokenTtlMs: number;
  clock: Clock;
  logger: Logger;
  /** How often a replica re-reads the key table. Default 60 s. */
  reloadIntervalMs?: number;
  /** How long before the current key stops signing its successor is created and published. Default rotation/4, at most 1 day. */
  prepublishMs?: number;
  /** Minimum gap between reloads caused by an unknown kid, so junk kids cannot hammer the database. Default 5 s. */
  unknownKidCooldownMs?: number;
}

interface LoadedKey {
  kid: string;
  alg: SigningAlgorithm;
  signUntilMs: number;
  publishUntilMs: number;
  publicJwk: JWK;
  publicKey: CryptoKey;
  /** Only for keys that may still sign. */
  privateKey?: CryptoKey;
}

/**
 * The access-token signing keys of this deployment, kept in PostgreSQL so every replica signs with
 * the same key and publishes the same JWKS. Reads are synchronous against an in-memory copy; the
 * copy is refreshed periodically, on an unknown kid (with a cooldown), and after this replica
 * creates a key. Keys are pre-published: the successor appears in the JWKS `prepublishMs` before
 * it starts signing, so relying parties that cache the JWKS already hold it (docs/security.md T5).
 */
export class SigningKeyStore {
  private keys = new Map<string, LoadedKey>();
  private jwksCache: { json: string; validUntilMs: number } | null = null;
  private reloading: Promise<void> | null = null;
  private maintaining: Promise<void> | null = null;
  private lastUnknownKidReload = Number.NEGATIVE_INFINITY;
  private lastReloadFailed = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly reloadIntervalMs: number;
  private readonly prepublishMs: number;
  private readonly cooldownMs: number;

  private constructor(private readonly o: SigningKeyStoreOptions) {
    if (!isSigningAlgorithm(o.algorithm)) throw new Error(`unsupported signing algorithm ${String(o.algorithm)}`);
    this.reloadIntervalMs = o.reloadIntervalMs ?? 60_000;
    this.prepublishMs = o.prepublishMs ?? Math.min(Math.floor(o.rotationMs / 4), DAY_MS);
    this.cooldownMs = o.unknownKidCooldownMs ?? 5_000;
    if (this.prepublishMs >= o.rotationMs) throw new Error('prepublishMs must be shorter than rotationMs');
  }

  /** Loads the keys, creating the first one if needed. Fails when a stored key cannot be decrypted. */
  static async open(opts: SigningKeyStoreOptions): Promise<SigningKeyStore> {
    const store = new SigningKeyStore(opts);
    await store.maintain();
    store.timer = setInterval(() => store.kick(), store.reloadIntervalMs);
    store.timer.unref();
    return store;
  }

  /** The key to sign with now. Throws `unavailable` only if no key could be prepared (database down at rotation time). */
  signingKey(): { kid: string; alg: SigningAlgorithm; key: CryptoKey } {
    const now = this.o.clock.nowMs();
    const current = this.currentAt(now);
    if (!current || this.needsNewKey(now)) this.kick();
    if (!current?.privateKey) {
      throw new LatchError('unavailable', 'ERR_SIGNING_KEYS_UNAVAILABLE', 'no signing key is ready, try again', {
        retryAfterMs: 1_000,
      });
    }
    return { kid: current.kid, alg: current.alg, key: current.privateKey };
  }

  /** Like signingKey(), but waits for a rotation in progress instead of failing. */
  async acquireSigningKey(): Promise<{ kid: string; alg: SigningAlgorithm; key: CryptoKey }> {
    if (!this.currentAt(this.o.clock.nowMs())) await this.maintainOnce().catch(() => undefined);
    return this.signingKey();
  }

  /** A published public key by kid, from memory only (no I/O). */
  verificationKey(kid: string): { alg: SigningAlgorithm; key: CryptoKey } | undefined {
    const k = this.keys.get(kid);
    if (!k || k.publishUntilMs <= this.o.clock.nowMs()) return undefined;
    return { alg: k.alg, key: k.publicKey };
  }

  /**
   * verificationKey(), re-reading the table once on a miss (another replica may have rotated), at
   * most once per cooldown. Throws `unavailable` when the table could not be read: an unknown kid
   * then means "cannot tell", not "invalid".
   */
  async resolveVerificationKey(kid: string): Promise<{ alg: SigningAlgorithm; key: CryptoKey } | undefined> {
    const hit = this.verificationKey(kid);
    if (hit) return hit;
    const t = performance.now();
    if (t - this.lastUnknownKidReload >= this.cooldownMs) {
      this.lastUnknownKidReload = t;
      try {
        await this.reload();
      } catch (cause) {
        this.o.logger.warn({ err: cause }, 'signing keys: reload for an unknown kid failed');
      }
    }
    if (this.lastReloadFailed) throw unavailable('ERR_SIGNING_KEYS_UNAVAILABLE', 'signing keys cannot be loaded');
    return this.verificationKey(kid);
  }

  /** The JWK Set of every published key (RFC 7517 5), cached until the set changes. */
  jwksJson(): string {
    const now = this.o.clock.nowMs();
    if (this.jwksCache && now < this.jwksCache.validUntilMs) return this.jwksCache.json;
    const published = [...this.keys.values()]
      .filter((k) => k.publishUntilMs > now)
      .sort((a, b) => a.signUntilMs - b.signUntilMs);
    const validUntilMs = Math.min(Number.POSITIVE_INFINITY, ...published.map((k) => k.publishUntilMs));
    const json = JSON.stringify({ keys: published.map((k) => k.publicJwk) });
    this.jwksCache = { json, validUntilMs };
    return json;
  }

  /** Retires every signing key now (they stay published until their tokens expire) and creates a new one. */
  async rotateNow(): Promise<void> {
    await this.createUnderLock('rotate');
  }

  /** Re-reads the key table. */
  async reload(): Promise<void> {
    this.reloading ??= this.doReload().finally(() => (this.reloading = null));
    return this.reloading;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.allSettled([this.maintaining, this.reloading]);
  }

  /** The key that signs at `now`: of the keys still allowed to sign, the one retiring first. */
  private currentAt(now: number): LoadedKey | undefined {
    let best: LoadedKey | undefined;
    for (const k of this.keys.values()) {
      if (k.signUntilMs > now && (!best || k.signUntilMs < best.signUntilMs)) best = k;
    }
    return best;
  }

  /** True when no key can sign, or the last one stops within the pre-publication window. */
  private needsNewKey(now: number): boolean {
    let latest = Number.NEGATIVE_INFINITY;
    for (const k of this.keys.values()) latest = Math.max(latest, k.signUntilMs);
    return latest - now <= this.prepublishMs;
  }

  private kick(): void {
    this.maintainOnce().catch((err) => this.o.logger.error({ err }, 'signing keys: maintenance failed'));
  }

  private maintainOnce(): Promise<void> {
    this.maintaining ??= this.maintain().finally(() => (this.maintaining = null));
    return this.maintaining;
  }

  private async maintain(): Promise<void> {
    await this.reload();
    if (this.needsNewKey(this.o.clock.nowMs())) await this.createUnderLock('ensure');
  }

  /**
   * Creates a key inside a transaction holding the advisory lock. In 'ensure' mode the need is
   * re-checked under the lock, because another replica may have created the key while we waited.
   */
  private async createUnderLock(mode: 'ensure' | 'rotate'): Promise<void> {
    const { orm, clock, rotationMs, accessTokenTtlMs, algorithm, box } = this.o;
    await orm.em.fork().transactional(async (em) => {
      // Lock: serialises key creation across replicas until this transaction ends.
      await em.execute(`select pg_advisory_xact_lock(${SIGNING_KEY_LOCK})`);
      const now = clock.nowMs();
      const live = await em.find(SigningKeyEntity, { signUntil: { $gt: new Date(now) } }, { orderBy: { signUntil: 'asc' } });
      let from = now;
      if (mode === 'rotate') {
        // Replicas that have not reloaded yet may sign with the old key for one more reload
        // interval, so its publication covers that too.
        const retireUntil = now + accessTokenTtlMs + MAX_LEEWAY_MS + this.reloadIntervalMs;
        for (const row of live) {
          row.signUntil = new Date(now);
          row.publishUntil = new Date(Math.min(row.publishUntil.getTime(), retireUntil));
        }
      } else {
        const latest = live.at(-1);
        if (latest && latest.signUntil.getTime() - now > this.prepublishMs) return;
        if (latest) from = latest.signUntil.getTime();
      }
      const key = await generateSigningKey(algorithm, box);
      const signUntil = from + rotationMs;
      em.create(SigningKeyEntity, {
        kid: key.kid,
        algorithm: key.algorithm,
        publicJwk: key.publicJwk as Record<string, unknown>,
        privateKeyEnc: key.privateKeyEnc,
        createdAt: new Date(now),
        signUntil: new Date(signUntil),
        publishUntil: new Date(signUntil + accessTokenTtlMs + MAX_LEEWAY_MS),
      });
      await em.nativeDelete(SigningKeyEntity, { publishUntil: { $lt: new Date(now - PURGE_AFTER_MS) } });
      this.o.logger.info({ kid: key.kid, alg: key.algorithm, signUntil: new Date(signUntil).toISOString(), mode }, 'signing key created');
    });
    await this.reload();
  }

  private async doReload(): Promise<void> {
    try {
      const now = this.o.clock.nowMs();
      const rows = await this.o.orm.em.fork().find(SigningKeyEntity, { publishUntil: { $gt: new Date(now) } });
      const next = new Map<string, LoadedKey>();
      for (const row of rows) {
        if (!isSigningAlgorithm(row.algorithm)) {
          this.o.logger.warn({ kid: row.kid, alg: row.algorithm }, 'signing keys: skipping a key with an unsupported algorithm');
          continue;
        }
        const signUntilMs = row.signUntil.getTime();
        const old = this.keys.get(row.kid);
        const canSign = signUntilMs > now;
        next.set(row.kid, {
          kid: row.kid,
          alg: row.algorithm,
          signUntilMs,
          publishUntilMs: row.publishUntil.getTime(),
          // Re-filtered on load: whatever is in the column, a JWKS entry never carries private members.
          publicJwk: old?.publicJwk ?? publicJwkOf(row.algorithm, row.kid, row.publicJwk as JWK),
          publicKey: old?.publicKey ?? (await importPublicKey(row.algorithm, row.publicJwk as JWK)),
          privateKey: canSign
            ? (old?.privateKey ?? (await importPrivateKey(row.kid, row.algorithm, row.privateKeyEnc, this.o.box)))
            : undefined,
        });
      }
      this.keys = next;
      this.jwksCache = null;
      this.lastReloadFailed = false;
    } catch (err) {
      this.lastReloadFailed = true;
      throw err;
    }
  }
}
