import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT, createMfaFixture, enrollUser, SecurityAlertKind, type MfaFixture } from './support.js';

/** M5, and the fresh proof DisableTotp and RegenerateBackupCodes need. */
describe('backup codes', () => {
  let f: MfaFixture;
  beforeAll(async () => {
    f = await createMfaFixture();
  });
  afterAll(async () => f?.close());

  const enrolled = () => enrollUser(f);

  const use = (userId: string, email: string, code: string) =>
    f.tdb.db.orm.em.fork().transactional((em) => f.mfa.verifyBackupCode(em, userId, code, { email, client: CLIENT }));

  it('are 10 distinct codes of 10 base32 characters, grouped, stored only as Argon2id hashes', async () => {
    const u = await enrolled();
    expect(u.codes).toHaveLength(10);
    expect(new Set(u.codes).size).toBe(10);
    for (const c of u.codes) expect(c).toMatch(/^[A-Z2-7]{5}-[A-Z2-7]{5}$/);
    const dump = await f.sql<{ t: string }>(`select b::text as t from backup_codes b where user_id = ?`, [u.id]);
    expect(dump).toHaveLength(10);
    const text = dump.map((r) => r.t).join('\n').toUpperCase();
    for (const c of u.codes) {
      expect(text).not.toContain(c);
      expect(text).not.toContain(c.replace('-', ''));
    }
    for (const r of await f.sql<{ code_hash: string }>(`select code_hash from backup_codes where user_id = ?`, [u.id])) {
      expect(r.code_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    }
    expect(f.logs()).not.toContain(u.codes[0]!.replace('-', ''));
  });

  it('work once, typed in any case, with or without the dash, and raise an alert', async () => {
    const u = await enrolled();
    const code = u.codes[3]!;
    expect(await use(u.id, u.email, ` ${code.toLowerCase().replace('-', ' ')} `)).toBe(true);
    expect(await use(u.id, u.email, code)).toBe(false);
    expect(await use(u.id, u.email, u.codes[4]!.replace('-', ''))).toBe(true);
    expect(await use(u.id, u.email, 'AAAAA-AAAAA')).toBe(false);
    expect(await use(u.id, u.email, 'not a code')).toBe(false);
    expect(await f.alerts(u.id)).toEqual([SecurityAlertKind.TOTP_ENABLED, SecurityAlertKind.BACKUP_CODE_USED, SecurityAlertKind.BACKUP_CODE_USED]);
    const used = await f.sql(`select 1 from backup_codes where user_id = ? and used_at is not null`, [u.id]);
    expect(used).toHaveLength(2);
  });

  it('two parallel uses of one code: exactly one succeeds', async () => {
    const u = await enrolled();
    const results = await Promise.all([use(u.id, u.email, u.codes[0]!), use(u.id, u.email, u.codes[0]!)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await f.alerts(u.id)).toEqual([SecurityAlertKind.TOTP_ENABLED, SecurityAlertKind.BACKUP_CODE_USED]);
  });

  it('do the same Argon2 work whichever code matches, or none', async () => {
    const u = await enrolled();
    const hasher = f.hasher as unknown as { verify: (...a: unknown[]) => unknown; burn: (...a: unknown[]) => unknown };
    const counts = { verify: 0, burn: 0 };
    const origVerify = hasher.verify.bind(hasher);
    const origBurn = hasher.burn.bind(hasher);
    hasher.verify = (...a) => (counts.verify++, origVerify(...a));
    hasher.burn = (...a) => (counts.burn++, origBurn(...a));
    try {
      const runs: Array<[string, typeof counts]> = [];
      for (const code of [u.codes[0]!, u.codes[9]!, 'ZZZZZ-ZZZZZ']) {
        counts.verify = counts.burn = 0;
        await use(u.id, u.email, code);
        runs.push([code, { ...counts }]);
      }
      // 10 unused codes, then 9 and 8: always 10 Argon2 runs, the missing ones burned.
      expect(runs.map(([, c]) => c)).toEqual([
        { verify: 10, burn: 0 },
        { verify: 9, burn: 1 },
        { verify: 8, burn: 2 },
      ]);
    } finally {
      hasher.verify = origVerify;
      hasher.burn = origBurn;
    }
  });

  it('regeneration needs a valid code, voids the old set, and raises an alert', async () => {
    const u = await enrolled();
    await expect(f.mfa.regenerateBackupCodes(u.id, u.email, '000000' === u.totp() ? '111111' : '000000', CLIENT)).rejects.toMatchObject({
      id: 'ERR_INVALID_MFA_CODE',
      kind: 'permission_denied',
    });
    const fresh = await f.mfa.regenerateBackupCodes(u.id, u.email, u.totp(), CLIENT);
    expect(fresh).toHaveLength(10);
    expect(fresh.some((c) => u.codes.includes(c))).toBe(false);
    f.clock.advance(1000); // alerts are listed by time; keep the two apart
    expect(await use(u.id, u.email, u.codes[1]!)).toBe(false);
    expect(await use(u.id, u.email, fresh[1]!)).toBe(true);
    expect(await f.sql(`select 1 from backup_codes where user_id = ?`, [u.id])).toHaveLength(10);
    expect(await f.alerts(u.id)).toEqual([
      SecurityAlertKind.TOTP_ENABLED,
      SecurityAlertKind.BACKUP_CODES_REGENERATED,
      SecurityAlertKind.BACKUP_CODE_USED,
    ]);
    // The TOTP code that authorised it is spent.
    await expect(f.mfa.regenerateBackupCodes(u.id, u.email, u.totp(), CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
  });

  it('disable needs a valid code, removes the credential and codes, and raises an alert', async () => {
    const u = await enrolled();
    await expect(f.mfa.disable(u.id, u.email, 'nonsense!', CLIENT)).rejects.toMatchObject({ kind: 'invalid_argument' });
    await f.mfa.disable(u.id, u.email, u.totp(), CLIENT);
    expect(await f.mfa.isEnabled(u.id)).toBe(false);
    expect(await f.sql(`select 1 from totp_credentials where user_id = ?`, [u.id])).toHaveLength(0);
    expect(await f.sql(`select 1 from backup_codes where user_id = ?`, [u.id])).toHaveLength(0);
    expect(await f.alerts(u.id)).toEqual([SecurityAlertKind.TOTP_ENABLED, SecurityAlertKind.TOTP_DISABLED]);
    await expect(f.mfa.disable(u.id, u.email, u.totp(), CLIENT)).rejects.toMatchObject({ id: 'ERR_TOTP_NOT_ENABLED' });
    await expect(f.mfa.regenerateBackupCodes(u.id, u.email, u.totp(), CLIENT)).rejects.toMatchObject({ id: 'ERR_TOTP_NOT_ENABLED' });
    // Enrollment can start over.
    await expect(f.mfa.beginEnrollment(u.id, u.email)).resolves.toHaveProperty('secret');
  });

  it('a lost device: disable with a backup code instead of a TOTP code', async () => {
    const u = await enrolled();
    await f.mfa.disable(u.id, u.email, u.codes[7]!, CLIENT);
    expect(await f.mfa.isEnabled(u.id)).toBe(false);
    // Both alerts come from one transaction with one timestamp: compare them as a set.
    expect((await f.alerts(u.id)).sort()).toEqual(
      [SecurityAlertKind.TOTP_ENABLED, SecurityAlertKind.BACKUP_CODE_USED, SecurityAlertKind.TOTP_DISABLED].sort(),
    );
  });

  it('wrong codes are limited per user across calls (A3)', async () => {
    const u = await enrolled();
    const wrong = u.totp() === '000000' ? '111111' : '000000';
    for (let i = 0; i < 10; i++) {
      await expect(f.mfa.regenerateBackupCodes(u.id, u.email, wrong, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
    }
    const err = await f.mfa.disable(u.id, u.email, u.totp(), CLIENT).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'resource_exhausted', id: 'ERR_TOO_MANY_MFA_ATTEMPTS' });
    expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect(await f.mfa.isEnabled(u.id)).toBe(true);
  });
});
