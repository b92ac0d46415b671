import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMfaAttemptLimiter } from '../../src/identity/mfa/mfa-attempt-limiter.js';
import type { MfaService } from '../../src/identity/mfa/mfa-service.js';
import { services } from '../helpers/services.js';
import { CLIENT, createMfaFixture, enrollUser, SecurityAlertKind, type MfaFixture } from './support.js';
import { base32Decode } from '../../src/identity/mfa/base32.js';
import { generateTotp } from '../../src/identity/mfa/totp.js';

/**
 * A3 + A4: the per-user budget of code checks (10) holds exactly under concurrency on every path
 * that checks a code, and they share it; the locking failure raises MFA_LOCKED once (A6).
 */
const LIMIT = 10;

/** Settles every call and tallies the outcomes by LatchError id. */
async function tally(calls: Array<() => Promise<unknown>>): Promise<Record<string, number>> {
  const results = await Promise.allSettled(calls.map((c) => c()));
  const counts: Record<string, number> = {};
  for (const r of results) {
    const id = r.status === 'fulfilled' ? 'ok' : ((r.reason as { id?: string }).id ?? String(r.reason));
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

const exactly = (n: number, total: number) => ({ ERR_INVALID_MFA_CODE: n, ERR_TOO_MANY_MFA_ATTEMPTS: total - n });

for (const store of ['in-process', 'Redis'] as const) {
  const redisUrl = services().redisUrl;
  describe.skipIf(store === 'Redis' && !redisUrl)(`MFA attempt limit per user, ${store} counters`, () => {
    let f: MfaFixture;
    let redis: Redis | undefined;
    /** A second service on its own pool sharing the counters: a second replica. */
    let other: MfaService;
    beforeAll(async () => {
      const keyPrefix = `t${randomBytes(4).toString('hex')}:`;
      redis = store === 'Redis' ? new Redis(redisUrl!, { maxRetriesPerRequest: 1 }) : undefined;
      f = await createMfaFixture({ limiter: createMfaAttemptLimiter({ redis, keyPrefix }) });
      // Without Redis each replica counts for itself, so the second one shares only with Redis.
      other = store === 'Redis' ? (await f.replica()).mfa : f.mfa;
    });
    afterAll(async () => {
      await f?.close();
      redis?.disconnect();
    });
    const pick = (i: number) => (i % 2 ? other : f.mfa);

    it('120 parallel wrong codes over 24 challenges: exactly 10 checked, one MFA_LOCKED', async () => {
      const u = await enrollUser(f);
      const challenges = await Promise.all(Array.from({ length: 24 }, () => f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT)));
      const calls = challenges.flatMap((c, j) =>
        Array.from({ length: 5 }, (_, k) => () => pick(j + k).completeChallenge(c.token, { totpCode: u.wrong() }, CLIENT)),
      );
      expect(await tally(calls)).toEqual(exactly(LIMIT, 120));
      expect((await f.alerts(u.id)).filter((k) => k === SecurityAlertKind.MFA_LOCKED)).toHaveLength(1);
      // Locked: the right code is refused too.
      const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
      await expect(f.mfa.completeChallenge(c.token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({ id: 'ERR_TOO_MANY_MFA_ATTEMPTS' });
    });

    it('signed-in paths share the budget: 45 parallel wrong codes to disable, regenerate and complete → exactly 10', async () => {
      const u = await enrollUser(f);
      const challenges = await Promise.all(Array.from({ length: 3 }, () => f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT)));
      const calls: Array<() => Promise<unknown>> = [];
      for (let i = 0; i < 15; i++) {
        calls.push(() => pick(i).disable(u.id, u.email, u.wrong(), CLIENT));
        calls.push(() => pick(i + 1).regenerateBackupCodes(u.id, u.email, u.wrong(), CLIENT));
        calls.push(() => pick(i).completeChallenge(challenges[i % 3]!.token, { totpCode: u.wrong() }, CLIENT));
      }
      expect(await tally(calls)).toEqual(exactly(LIMIT, 45));
      expect(await f.mfa.isEnabled(u.id)).toBe(true);
      expect((await f.alerts(u.id)).filter((k) => k === SecurityAlertKind.MFA_LOCKED)).toHaveLength(1);
    });

    it('confirming an enrollment: 30 parallel wrong codes → exactly 10 checked', async () => {
      const u = await f.newUser();
      const { secret } = await f.mfa.beginEnrollment(u.id, u.email);
      const key = base32Decode(secret);
      const valid = new Set([-1, 0, 1].map((s) => generateTotp(key, f.clock.nowMs() + s * 30_000)));
      const wrong = ['000000', '111111', '222222', '333333'].find((c) => !valid.has(c))!;
      const calls = Array.from({ length: 30 }, (_, i) => () => pick(i).confirmEnrollment(u.id, u.email, wrong, CLIENT));
      expect(await tally(calls)).toEqual(exactly(LIMIT, 30));
      expect(await f.alerts(u.id)).toEqual([SecurityAlertKind.MFA_LOCKED]);
    });

    it('a success gives the budget back; the lock warning carries no code or secret', async () => {
      const u = await enrollUser(f);
      for (let i = 0; i < LIMIT - 1; i++) {
        await expect(f.mfa.disable(u.id, u.email, u.wrong(), CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
      }
      await f.mfa.regenerateBackupCodes(u.id, u.email, u.totp(), CLIENT);
      f.clock.advance(30_000);
      for (let i = 0; i < LIMIT; i++) {
        await expect(f.mfa.disable(u.id, u.email, u.wrong(), CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
      }
      await expect(f.mfa.disable(u.id, u.email, u.totp(), CLIENT)).rejects.toMatchObject({ id: 'ERR_TOO_MANY_MFA_ATTEMPTS' });
      expect((await f.alerts(u.id)).filter((k) => k === SecurityAlertKind.MFA_LOCKED)).toHaveLength(1);
      const lockLines = f.logs().split('\n').filter((l) => l.includes('second factor locked') && l.includes(u.id));
      expect(lockLines).toHaveLength(1);
      // Who and from where, nothing else: no code, secret or token.
      const { userId, clientIp, msg } = JSON.parse(lockLines[0]!) as Record<string, unknown>;
      expect({ userId, clientIp, msg }).toEqual({ userId: u.id, clientIp: CLIENT.ip, msg: 'second factor locked after too many wrong codes' });
      expect(Object.keys(JSON.parse(lockLines[0]!) as object).sort()).toEqual(['clientIp', 'level', 'msg', 'service', 'time', 'userId']);
    });
  });
}
