import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { SecretBox } from '../../src/shared/secret-box.js';
import { identityEntities } from '../../src/identity/app.js';
import { openDatabase, type Database } from '../../src/identity/persistence/database.js';
import { AccessTokens } from '../../src/identity/token/access-token.js';
import type { SigningAlgorithm } from '../../src/identity/token/key-material.js';
import { SigningKeyStore, type SigningKeyStoreOptions } from '../../src/identity/token/key-store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

export const ISSUER = 'https://latch.test';
export const AUDIENCE = 'latch-api';
export const TTL_SECONDS = 900;
export const HOUR_MS = 3_600_000;
/** A fixed instant with a non-zero millisecond part (2025-11-25T10:40:00.123Z). */
export const T0 = 1_764_067_200_123;

export const newBox = () => new SecretBox(randomBytes(32));

export interface Replica {
  store: SigningKeyStore;
  tokens: AccessTokens;
}

/** A throw-away database plus helpers to open key stores ("replicas") on it. */
export class TokenWorld {
  readonly clock = new ManualClock(T0);
  readonly box = newBox();
  private readonly stores: SigningKeyStore[] = [];
  private readonly extraDbs: Database[] = [];

  private constructor(readonly test: TestDatabase) {}

  static async create(): Promise<TokenWorld> {
    return new TokenWorld(await createTestDatabase());
  }

  get orm() {
    return this.test.db.orm;
  }

  async openStore(over: Partial<SigningKeyStoreOptions> & { algorithm?: SigningAlgorithm } = {}): Promise<SigningKeyStore> {
    const store = await SigningKeyStore.open({
      orm: this.orm,
      box: this.box,
      algorithm: 'EdDSA',
      rotationMs: HOUR_MS,
      accessTokenTtlMs: TTL_SECONDS * 1000,
      clock: this.clock,
      logger: silentLogger,
      ...over,
    });
    this.stores.push(store);
    return store;
  }

  /** A second process on the same database: its own connection pool, key cache and timers. */
  async openReplica(over: Partial<SigningKeyStoreOptions> = {}): Promise<Replica & { db: Database }> {
    const db = await openDatabase({ databaseUrl: this.test.url, dataDir: '/nonexistent', poolMax: 2, logger: silentLogger, entities: identityEntities });
    this.extraDbs.push(db);
    const store = await this.openStore({ orm: db.orm, ...over });
    return { db, store, tokens: this.accessTokens(store) };
  }

  accessTokens(store: SigningKeyStore, leewaySeconds?: number): AccessTokens {
    return new AccessTokens(store, { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: TTL_SECONDS, clock: this.clock, leewaySeconds });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.stores.map((s) => s.close()));
    await Promise.allSettled(this.extraDbs.map((d) => d.close()));
    await this.test.drop();
  }
}

export const sampleInput = {
  userId: '0193a5c4-8d2e-7c1b-9f00-1a2b3c4d5e6f',
  role: 'user',
  sessionId: '0193a5c4-8d2e-7c1b-9f00-aaaaaaaaaaaa',
  amr: ['pwd'],
  passwordMustChange: false,
};

export const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
