import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapAdmin, type BootstrapOutcome } from '../../src/identity/admin/bootstrap.js';
import { identityEntities } from '../../src/identity/app.js';
import { openDatabase, type Database } from '../../src/identity/persistence/database.js';
import { breachCheckDisabled } from '../../src/identity/password/breach-check.js';
import type { PasswordHasher } from '../../src/identity/password/hasher.js';
import { PasswordPolicy } from '../../src/identity/password/policy.js';
import { systemClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { uniqueEmail } from '../helpers/identity.js';
import { Barrier, lockProbe, type LockProbe } from '../helpers/lock-waiters.js';

const REPLICAS = 3;
const ADMIN_PASSWORD = 'bootstrap-race-secret-6620-kw';

/**
 * B1: replicas starting together create exactly one admin. The race is forced, not hoped for:
 * every replica passes the "no admin yet" pre-check and parks in hash(); the test then locks the
 * users table, lets them all go and waits until all of them are blocked inside PostgreSQL before
 * it lets go itself. With the bootstrap's serialising lock one replica creates the admin and the
 * others see it; without it all of them read "no admin" and race the insert.
 */
describe('admin bootstrap across replicas starting at once (B1)', () => {
  let tdb: TestDatabase;
  let probe: LockProbe;
  const replicas: Database[] = [];
  beforeAll(async () => {
    tdb = await createTestDatabase({ poolMax: 2 });
    probe = lockProbe(tdb.url);
    // Separate ORMs and pools, as separate processes would have. A generous statement timeout:
    // the contenders are meant to wait on locks here.
    for (let i = 0; i < REPLICAS; i++) {
      replicas.push(await openDatabase({ databaseUrl: tdb.url, dataDir: '/nonexistent', poolMax: 2, logger: silentLogger, waits: { statementTimeoutMs: 60_000 }, entities: identityEntities }));
    }
  });
  afterAll(async () => {
    await probe?.close();
    await Promise.all(replicas.map((r) => r.close()));
    await tdb?.drop();
  });

  it('exactly one replica creates the admin; the others report admin_exists and none fails', async () => {
    const email = uniqueEmail('admin');
    const barrier = new Barrier();
    const hasher = {
      async hash(password: string) {
        await barrier.wait();
        return `test-hash:${password.length}`;
      },
    } as unknown as PasswordHasher;
    const deps = { hasher, policy: new PasswordPolicy(), breaches: breachCheckDisabled, clock: systemClock, logger: silentLogger };

    const runs = replicas.map((r) => bootstrapAdmin(r.orm, { email, password: ADMIN_PASSWORD }, deps));
    const settled = Promise.allSettled(runs);
    let held: Awaited<ReturnType<LockProbe['hold']>> | undefined;
    try {
      await barrier.whenArrived(REPLICAS);
      held = await probe.hold(`lock table users in access exclusive mode`);
      barrier.open();
      await probe.waitForWaiters(REPLICAS);
    } finally {
      barrier.open();
      await held?.release();
    }

    const results = await settled;
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    expect(failures).toEqual([]);
    const outcomes = results.map((r) => (r as PromiseFulfilledResult<BootstrapOutcome>).value).sort();
    expect(outcomes).toEqual(['admin_exists', 'admin_exists', 'created']);
    const admins: Array<{ email: string; password_must_change: boolean }> = await tdb.db.orm.em
      .fork()
      .execute(`select email, password_must_change from users where role = 'admin'`);
    expect(admins).toEqual([{ email, password_must_change: true }]);
  });
});
