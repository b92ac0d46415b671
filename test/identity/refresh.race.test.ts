import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockProbe, type HeldLock, type LockProbe } from '../helpers/lock-waiters.js';
import { signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';

const CALLERS = 20;
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * R3/R4: parallel refreshes of one token serialise on its row. The race is forced: a transaction
 * of the test's own holds the token's row lock while CALLERS refreshes arrive, and lets go only
 * once all of them are blocked inside PostgreSQL. When the rotation locks the row before reading
 * it, the first caller rotates and every other one reads the consumed token and gets the same
 * successor back (grace window). When it does not, every caller has read the token as unused
 * before the release and each one creates a successor of its own.
 */
describe('parallel refreshes of one token (R3)', () => {
  let t: TestIdentity;
  let probe: LockProbe;
  beforeAll(async () => {
    t = await startTestIdentity({
      redis: false,
      env: {
        REFRESH_GRACE_SECONDS: '30',
        // Every caller holds a connection while it waits on the row, plus room for the rest.
        DATABASE_POOL_MAX: String(CALLERS + 8),
        // The contenders are meant to wait on a lock here.
        DATABASE_STATEMENT_TIMEOUT_MS: '60000',
      },
    });
    probe = lockProbe(t.databaseUrl);
  });
  afterAll(async () => {
    await probe?.close();
    await t?.stop();
  });

  it(`${CALLERS} refreshes blocked on the token's row lock create exactly one successor, and all get it`, async () => {
    const { session } = await signUp(t.grpc);
    const hash = sha256(session.refreshToken);

    let held: HeldLock | undefined;
    let calls: Promise<PromiseSettledResult<string>[]>;
    try {
      held = await probe.hold(`select 1 from refresh_tokens where token_hash = ? for update`, [hash]);
      calls = Promise.allSettled(
        Array.from({ length: CALLERS }, async () => (await t.grpc.auth.refresh({ refreshToken: session.refreshToken })).session!.refreshToken),
      );
      await probe.waitForWaiters(CALLERS);
    } finally {
      await held?.release();
    }

    const results = await calls!;
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    expect(failures).toEqual([]);
    const tokens = results.map((r) => (r as PromiseFulfilledResult<string>).value);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(session.refreshToken);

    const successors: Array<{ token_hash: Buffer }> = await t.app.internals.db.orm.em
      .fork()
      .execute(`select token_hash from refresh_tokens where parent_id = (select id from refresh_tokens where token_hash = ?)`, [hash]);
    expect(successors).toHaveLength(1);
    expect(successors[0]!.token_hash.equals(sha256(tokens[0]!))).toBe(true);
    const family: Array<{ n: string }> = await t.app.internals.db.orm.em
      .fork()
      .execute(`select count(*)::text as n from refresh_tokens where session_id = (select session_id from refresh_tokens where token_hash = ?)`, [hash]);
    expect(family[0]!.n).toBe('2');
  });
});
