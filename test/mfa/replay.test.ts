import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32Decode } from '../../src/identity/mfa/base32.js';
import type { MfaService } from '../../src/identity/mfa/mfa-service.js';
import { generateTotp, hotp, timeStep } from '../../src/identity/mfa/totp.js';
import { CLIENT, createMfaFixture, type MfaFixture } from './support.js';

/** M3: each step once per user, decided in PostgreSQL, across replicas. */
describe('TOTP replay protection', () => {
  let f: MfaFixture;
  let other: MfaService;
  let otherOrm: MikroORM;
  beforeAll(async () => {
    f = await createMfaFixture();
    ({ mfa: other, orm: otherOrm } = await f.replica());
  });
  afterAll(async () => f?.close());

  async function enrolled(): Promise<{ id: string; email: string; key: Buffer }> {
    const u = await f.newUser();
    const { secret } = await f.mfa.beginEnrollment(u.id, u.email);
    const key = base32Decode(secret);
    await f.mfa.confirmEnrollment(u.id, u.email, generateTotp(key, f.clock.nowMs()), CLIENT);
    f.clock.advance(30_000);
    return { ...u, key };
  }

  const verifyOn = (svc: MfaService, userId: string, code: string) =>
    (svc === other ? otherOrm : f.tdb.db.orm).em.fork().transactional((em) => svc.verifyTotp(em, userId, code));

  // Parallel submissions of one code are forced onto one row lock in replay.race.test.ts.

  it('a code is refused on the other replica once used, with no Redis involved', async () => {
    const u = await enrolled();
    const code = generateTotp(u.key, f.clock.nowMs());
    expect(await verifyOn(f.mfa, u.id, code)).toBe(true);
    expect(await verifyOn(other, u.id, code)).toBe(false);
    expect(await verifyOn(f.mfa, u.id, code)).toBe(false);
  });

  it('after a later step is accepted, earlier steps of the window are refused', async () => {
    const u = await enrolled();
    const step = timeStep(f.clock.nowMs());
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step + 1n))).toBe(true);
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step))).toBe(false);
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step - 1n))).toBe(false);
    f.clock.advance(60_000); // now step + 2: step + 1 is the previous step, already used
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step + 1n))).toBe(false);
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step + 2n))).toBe(true);
  });

  it('an older step still in the window is accepted when it is after the last used one', async () => {
    const u = await enrolled();
    f.clock.advance(30_000); // the confirming step is now two behind
    const step = timeStep(f.clock.nowMs());
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step - 2n))).toBe(false); // outside ±1
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step - 1n))).toBe(true);
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step))).toBe(true);
    expect(await verifyOn(f.mfa, u.id, hotp(u.key, step + 2n))).toBe(false); // outside ±1
  });

  it('a rolled-back transaction does not spend the step', async () => {
    const u = await enrolled();
    const code = generateTotp(u.key, f.clock.nowMs());
    await expect(
      f.tdb.db.orm.em.fork().transactional(async (em) => {
        expect(await f.mfa.verifyTotp(em, u.id, code)).toBe(true);
        throw new Error('later step failed');
      }),
    ).rejects.toThrow('later step failed');
    expect(await verifyOn(f.mfa, u.id, code)).toBe(true);
  });

  it('a user without confirmed TOTP never verifies', async () => {
    const u = await f.newUser();
    const { secret } = await f.mfa.beginEnrollment(u.id, u.email);
    expect(await verifyOn(f.mfa, u.id, generateTotp(base32Decode(secret), f.clock.nowMs()))).toBe(false);
  });
});
