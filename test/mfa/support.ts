import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { fromBinary } from '@bufbuild/protobuf';
import type { MikroORM } from '@mikro-orm/postgresql';
import { SecurityAlertSchema, SecurityAlertKind } from '../../src/gen/identity/events/v1/events_pb.js';
import { identityEntities } from '../../src/identity/app.js';
import { openDatabase, type Database } from '../../src/identity/persistence/database.js';
import { base32Decode } from '../../src/identity/mfa/base32.js';
import { generateTotp } from '../../src/identity/mfa/totp.js';
import { createMfaAttemptLimiter } from '../../src/identity/mfa/mfa-attempt-limiter.js';
import { MfaService, type MfaServiceDeps } from '../../src/identity/mfa/mfa-service.js';
import { PasswordHasher } from '../../src/identity/password/hasher.js';
import { ManualClock } from '../../src/shared/clock.js';
import { createLogger, silentLogger, type Logger } from '../../src/shared/logger.js';
import { SecretBox } from '../../src/shared/secret-box.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

export const CLIENT = { ip: '203.0.113.7', userAgent: 'mfa-test/1.0' };

/** OWASP minimum Argon2id parameters: real hashing, as fast as the hasher allows. */
export function testHasher(): PasswordHasher {
  return new PasswordHasher({ memoryKiB: 19456, timeCost: 2, parallelism: 1, concurrency: 4, queueMax: 200, queueTimeoutMs: 60_000, maxBytes: 1024 });
}

export interface MfaFixture {
  tdb: TestDatabase;
  clock: ManualClock;
  box: SecretBox;
  hasher: PasswordHasher;
  mfa: MfaService;
  /** Everything the service logged, for greps (E3). */
  logs(): string;
  /** Another MfaService with the same key on its own ORM and connection pool (a second replica). */
  replica(): Promise<{ mfa: MfaService; orm: MikroORM }>;
  newUser(): Promise<{ id: string; email: string }>;
  alerts(userId: string): Promise<SecurityAlertKind[]>;
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function createMfaFixture(overrides: Partial<MfaServiceDeps> = {}): Promise<MfaFixture> {
  const tdb = await createTestDatabase({ poolMax: 12 });
  const clock = new ManualClock(Date.UTC(2031, 0, 15, 9, 30, 10));
  const box = new SecretBox(randomBytes(32));
  const hasher = testHasher();
  let captured = '';
  const logger: Logger = createLogger(
    'debug',
    new Writable({
      write(chunk, _enc, done) {
        captured += String(chunk);
        done();
      },
    }),
  );
  const build = (orm: MikroORM) =>
    new MfaService({
      orm,
      box,
      hasher,
      clock,
      logger,
      limiter: createMfaAttemptLimiter({ keyPrefix: `t${randomBytes(4).toString('hex')}:` }),
      ...overrides,
    });
  const replicas: Database[] = [];
  return {
    tdb,
    clock,
    box,
    hasher,
    mfa: build(tdb.db.orm),
    logs: () => captured,
    async replica() {
      const db = await openDatabase({ databaseUrl: tdb.url, dataDir: '/nonexistent', poolMax: 12, logger: silentLogger, entities: identityEntities });
      replicas.push(db);
      return { mfa: build(db.orm), orm: db.orm };
    },
    async newUser() {
      const id = randomUUID();
      const email = `mfa-${randomBytes(4).toString('hex')}@example.test`;
      await tdb.db.orm.em.fork().execute(
        `insert into users (id, email, password_hash, tokens_valid_after, created_at, updated_at) values (?, ?, 'x', now(), now(), now())`,
        [id, email],
        'run',
      );
      return { id, email };
    },
    async alerts(userId) {
      const rows: Array<{ payload: Buffer }> = await tdb.db.orm.em
        .fork()
        .execute(`select payload from outbox where subject = 'security_alert' order by seq`);
      return rows.map((r) => fromBinary(SecurityAlertSchema, r.payload)).filter((a) => a.userId === userId).map((a) => a.kind);
    },
    sql: (query, params = []) => tdb.db.orm.em.fork().execute(query, params),
    async close() {
      await Promise.all(replicas.map((r) => r.close()));
      await tdb.drop();
    },
  };
}

export { SecurityAlertKind };

/** A user with confirmed TOTP (the confirming step consumed) and the clock moved to the next step. */
export async function enrollUser(f: MfaFixture) {
  const u = await f.newUser();
  const { secret } = await f.mfa.beginEnrollment(u.id, u.email);
  const key = base32Decode(secret);
  const codes = await f.mfa.confirmEnrollment(u.id, u.email, generateTotp(key, f.clock.nowMs()), CLIENT);
  f.clock.advance(30_000);
  const totp = () => generateTotp(key, f.clock.nowMs());
  const wrong = () => (totp() === '000000' ? '111111' : '000000');
  return { ...u, key, codes, totp, wrong };
}
