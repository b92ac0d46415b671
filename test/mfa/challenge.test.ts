import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT, createMfaFixture, enrollUser, SecurityAlertKind, type MfaFixture } from './support.js';

/** M6 and A3: the Login → mfa_challenge → CompleteMfa step. */
describe('MFA challenge', () => {
  let f: MfaFixture;
  beforeAll(async () => {
    f = await createMfaFixture();
  });
  afterAll(async () => f?.close());

  const enrolled = () => enrollUser(f);

  it('is an opaque token, valid 5 minutes, stored only as its SHA-256', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    expect(c.token).toMatch(/^mfa_[A-Za-z0-9_-]{43}$/);
    expect(c.token.split('.')).toHaveLength(1); // not a JWS
    expect(c.expiresAtMs).toBe(f.clock.nowMs() + 5 * 60_000);
    expect(c.methods).toEqual(['totp', 'backup_code']);
    const rows = await f.sql<{ token_hash: Buffer; t: string }>(`select token_hash, c::text as t from mfa_challenges c where user_id = ?`, [u.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash.equals(createHash('sha256').update(c.token).digest())).toBe(true);
    expect(rows[0]!.t).not.toContain(c.token.slice(4));
  });

  it('completes once with a TOTP code and reports amr pwd + otp', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    const code = u.totp();
    await expect(f.mfa.completeChallenge(c.token, { totpCode: code }, CLIENT)).resolves.toEqual({
      userId: u.id,
      amr: ['pwd', 'otp'],
      method: 'totp',
    });
    // Single use, even with a new valid code.
    f.clock.advance(30_000);
    await expect(f.mfa.completeChallenge(c.token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({
      kind: 'unauthenticated',
      id: 'ERR_INVALID_CHALLENGE',
    });
    const [row] = await f.sql<{ failed_attempts: number }>(`select failed_attempts from mfa_challenges where user_id = ?`, [u.id]);
    expect(row!.failed_attempts).toBe(0);
  });

  it('the TOTP code used at one challenge is refused at another', async () => {
    const u = await enrolled();
    const a = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    const b = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    const code = u.totp();
    await f.mfa.completeChallenge(a.token, { totpCode: code }, CLIENT);
    await expect(f.mfa.completeChallenge(b.token, { totpCode: code }, CLIENT)).rejects.toMatchObject({
      kind: 'unauthenticated',
      id: 'ERR_INVALID_MFA_CODE',
    });
  });

  it('completes with a backup code, which is then spent, with an alert', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    await expect(f.mfa.completeChallenge(c.token, { backupCode: u.codes[2]! }, CLIENT)).resolves.toMatchObject({
      amr: ['pwd', 'otp'],
      method: 'backup_code',
    });
    const c2 = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    await expect(f.mfa.completeChallenge(c2.token, { backupCode: u.codes[2]! }, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
    expect(await f.alerts(u.id)).toEqual([SecurityAlertKind.TOTP_ENABLED, SecurityAlertKind.BACKUP_CODE_USED]);
  });

  it('parallel completions of one challenge: exactly one session', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    const code = u.totp();
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => f.mfa.completeChallenge(c.token, { totpCode: code }, CLIENT)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('expires after 5 minutes', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    f.clock.advance(5 * 60_000);
    await expect(f.mfa.completeChallenge(c.token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_CHALLENGE' });
    // One millisecond earlier it would have worked.
    const d = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    f.clock.advance(5 * 60_000 - 1);
    await expect(f.mfa.completeChallenge(d.token, { totpCode: u.totp() }, CLIENT)).resolves.toMatchObject({ userId: u.id });
  });

  it('is burned after 5 wrong codes, even for the right one', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    for (let i = 0; i < 5; i++) {
      await expect(f.mfa.completeChallenge(c.token, { totpCode: u.wrong() }, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
    }
    await expect(f.mfa.completeChallenge(c.token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_CHALLENGE' });
  });

  it('counts parallel wrong guesses exactly: at most 5 are tried', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => f.mfa.completeChallenge(c.token, { totpCode: u.wrong() }, CLIENT)));
    const ids = results.map((r) => (r.status === 'rejected' ? (r.reason as { id: string }).id : 'ok'));
    expect(ids.filter((id) => id === 'ERR_INVALID_MFA_CODE')).toHaveLength(5);
    expect(ids.filter((id) => id === 'ERR_INVALID_CHALLENGE')).toHaveLength(7);
  });

  it('limits wrong codes per user across challenges (A3)', async () => {
    const u = await enrolled();
    for (let round = 0; round < 2; round++) {
      const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
      for (let i = 0; i < 5; i++) await f.mfa.completeChallenge(c.token, { totpCode: u.wrong() }, CLIENT).catch(() => undefined);
    }
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    const err = await f.mfa.completeChallenge(c.token, { totpCode: u.totp() }, CLIENT).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'resource_exhausted', id: 'ERR_TOO_MANY_MFA_ATTEMPTS' });
    expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
  });

  it('refuses random, foreign and JWT-shaped tokens', async () => {
    const u = await enrolled();
    const jwtLike = `${Buffer.from('{"alg":"EdDSA","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(`{"sub":"${u.id}"}`).toString('base64url')}.${randomBytes(64).toString('base64url')}`;
    for (const token of [`mfa_${randomBytes(32).toString('base64url')}`, randomBytes(32).toString('base64url'), jwtLike, '', 'mfa_']) {
      await expect(f.mfa.completeChallenge(token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({
        kind: 'unauthenticated',
        id: 'ERR_INVALID_CHALLENGE',
      });
    }
  });

  it('dies with a disabled account', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    await f.sql(`update users set disabled = true where id = ?`, [u.id]);
    await expect(f.mfa.completeChallenge(c.token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_CHALLENGE' });
  });

  it('rejects malformed codes as invalid arguments without charging an attempt', async () => {
    const u = await enrolled();
    const c = await f.mfa.createChallenge(undefined, u.id, ['pwd'], CLIENT);
    await expect(f.mfa.completeChallenge(c.token, { totpCode: '12ab56' }, CLIENT)).rejects.toMatchObject({ kind: 'invalid_argument' });
    await expect(f.mfa.completeChallenge(c.token, { backupCode: 'x'.repeat(5000) }, CLIENT)).rejects.toMatchObject({ kind: 'invalid_argument' });
    const [row] = await f.sql<{ failed_attempts: number }>(`select failed_attempts from mfa_challenges where user_id = ?`, [u.id]);
    expect(row!.failed_attempts).toBe(0);
  });

  it('is written inside the caller’s transaction and rolls back with it', async () => {
    const u = await enrolled();
    let token = '';
    await expect(
      f.tdb.db.orm.em.fork().transactional(async (em) => {
        token = (await f.mfa.createChallenge(em, u.id, ['pwd'], CLIENT)).token;
        throw new Error('login failed later');
      }),
    ).rejects.toThrow('login failed later');
    await expect(f.mfa.completeChallenge(token, { totpCode: u.totp() }, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_CHALLENGE' });
  });
});
