import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MfaService } from '../../src/identity/mfa/mfa-service.js';
import { timeStep } from '../../src/identity/mfa/totp.js';
import { lockProbe, type HeldLock, type LockProbe } from '../helpers/lock-waiters.js';
import { createMfaFixture, enrollUser, type MfaFixture } from './support.js';

const SUBMISSIONS = 10;

/**
 * M3: one TOTP step is accepted once per user, decided by PostgreSQL, across replicas. The race is
 * forced: a transaction of the test's own holds the user's credential row while SUBMISSIONS
 * verifications of one code (on two replicas) arrive, and lets go only once all of them are
 * blocked on it. Every one of them has by then checked the code against the credential it read;
 * only the conditional claim, re-evaluated after the wait, can tell them apart.
 */
describe('TOTP replay under a forced race (M3)', () => {
  let f: MfaFixture;
  let other: { mfa: MfaService; orm: MikroORM };
  let probe: LockProbe;
  beforeAll(async () => {
    f = await createMfaFixture();
    other = await f.replica();
    probe = lockProbe(f.tdb.url);
  });
  afterAll(async () => {
    await probe?.close();
    await f?.close();
  });

  it(`${SUBMISSIONS} parallel submissions of one code blocked on the credential row: exactly one succeeds`, async () => {
    const u = await enrollUser(f);
    const code = u.totp();
    const replicas: Array<{ mfa: MfaService; orm: MikroORM }> = [{ mfa: f.mfa, orm: f.tdb.db.orm }, other];

    let held: HeldLock | undefined;
    let verdicts: Promise<PromiseSettledResult<boolean>[]>;
    try {
      held = await probe.hold(`select 1 from totp_credentials where user_id = ? for update`, [u.id]);
      verdicts = Promise.allSettled(
        Array.from({ length: SUBMISSIONS }, (_, i) => {
          const r = replicas[i % replicas.length]!;
          return r.orm.em.fork().transactional((em) => r.mfa.verifyTotp(em, u.id, code));
        }),
      );
      await probe.waitForWaiters(SUBMISSIONS);
    } finally {
      await held?.release();
    }

    const results = await verdicts!;
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    expect(failures).toEqual([]);
    expect(results.filter((r) => r.status === 'fulfilled' && r.value)).toHaveLength(1);
    const [row] = await f.sql<{ last_used_step: string }>(`select last_used_step from totp_credentials where user_id = ?`, [u.id]);
    expect(BigInt(row!.last_used_step)).toBe(timeStep(f.clock.nowMs()));
  });
});
