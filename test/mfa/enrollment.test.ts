import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32Decode } from '../../src/identity/mfa/base32.js';
import { generateTotp } from '../../src/identity/mfa/totp.js';
import { CLIENT, createMfaFixture, SecurityAlertKind, type MfaFixture } from './support.js';

/**
 * Enrollment (M2, M4) with codes from independent generators: oathtool and pyotp. Under CI=true
 * a missing generator fails the run; elsewhere its test is skipped and says why.
 */
const ci = process.env.CI === 'true';

function run(cmd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? String(r.error ?? '')).trim() };
}

const oathtoolProbe = run('/usr/bin/oathtool', ['--version']);
const pyotpProbe = run('/usr/bin/python3', ['-c', 'import pyotp']);

/** A test that needs a peer: runs when present, fails under CI when absent, else is skipped. */
function withPeer(name: string, probe: { ok: boolean; err: string }, title: string, fn: () => Promise<void>) {
  if (probe.ok) it(title, fn);
  else if (ci) it(title, () => { throw new Error(`CI=true but ${name} is missing: ${probe.err}`); });
  else it.skip(`${title} [skipped: ${name} not installed: ${probe.err}]`, fn);
}

const unix = (f: MfaFixture) => Math.floor(f.clock.nowMs() / 1000);
const oathtoolCode = (f: MfaFixture, secret: string) => run('/usr/bin/oathtool', ['--totp', '-b', `--now=@${unix(f)}`, secret]).out;
const pyotpCode = (f: MfaFixture, secret: string) =>
  run('/usr/bin/python3', ['-c', 'import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))', secret, String(unix(f))]).out;

describe('TOTP enrollment', () => {
  let f: MfaFixture;
  beforeAll(async () => {
    f = await createMfaFixture();
  });
  afterAll(async () => f?.close());

  withPeer('oathtool', oathtoolProbe, 'confirms with a code from oathtool, and the same code is then spent', async () => {
    const u = await f.newUser();
    const { secret, otpauthUri } = await f.mfa.beginEnrollment(u.id, u.email);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toBe(`otpauth://totp/Latch:${u.email}?secret=${secret}&issuer=Latch&algorithm=SHA1&digits=6&period=30`);
    expect(await f.mfa.isEnabled(u.id)).toBe(false);
    const code = oathtoolCode(f, secret);
    expect(code).toMatch(/^\d{6}$/);

    const backup = await f.mfa.confirmEnrollment(u.id, u.email, code, CLIENT);
    expect(backup).toHaveLength(10);
    expect(await f.mfa.isEnabled(u.id)).toBe(true);
    expect(await f.alerts(u.id)).toEqual([SecurityAlertKind.TOTP_ENABLED]);
    // M4: the confirming code's step is consumed.
    const em = f.tdb.db.orm.em.fork();
    expect(await em.transactional((tx) => f.mfa.verifyTotp(tx, u.id, code))).toBe(false);
    // The next step's code works once.
    f.clock.advance(30_000);
    const next = oathtoolCode(f, secret);
    expect(await em.transactional((tx) => f.mfa.verifyTotp(tx, u.id, next))).toBe(true);
    expect(await em.transactional((tx) => f.mfa.verifyTotp(tx, u.id, next))).toBe(false);
  });

  withPeer('python3-pyotp', pyotpProbe, 'confirms with a code from pyotp, which also reads our otpauth URI', async () => {
    const u = await f.newUser();
    const { secret, otpauthUri } = await f.mfa.beginEnrollment(u.id, u.email);
    const parsed = run('/usr/bin/python3', [
      '-c',
      'import pyotp, sys; t = pyotp.parse_uri(sys.argv[1]); print(t.secret, t.name, t.issuer, t.digits, t.interval, t.digest().name)',
      otpauthUri,
    ]);
    expect(parsed.out).toBe(`${secret} ${u.email} Latch 6 30 sha1`);
    const code = pyotpCode(f, secret);
    await expect(f.mfa.confirmEnrollment(u.id, u.email, code, CLIENT)).resolves.toHaveLength(10);
  });

  it('refuses a wrong code and keeps the enrollment pending', async () => {
    const u = await f.newUser();
    const { secret } = await f.mfa.beginEnrollment(u.id, u.email);
    const good = generateTotp(base32Decode(secret), f.clock.nowMs());
    const wrong = String((Number(good) + 1) % 1_000_000).padStart(6, '0');
    await expect(f.mfa.confirmEnrollment(u.id, u.email, wrong, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
    await expect(f.mfa.confirmEnrollment(u.id, u.email, '12345', CLIENT)).rejects.toMatchObject({ kind: 'invalid_argument' });
    expect(await f.mfa.isEnabled(u.id)).toBe(false);
    expect(await f.alerts(u.id)).toEqual([]);
    expect(await f.sql(`select 1 from backup_codes where user_id = ?`, [u.id])).toHaveLength(0);
  });

  it('restarting enrollment replaces the secret; a confirmed one cannot be replaced', async () => {
    const u = await f.newUser();
    const first = await f.mfa.beginEnrollment(u.id, u.email);
    const second = await f.mfa.beginEnrollment(u.id, u.email);
    expect(second.secret).not.toBe(first.secret);
    const oldCode = generateTotp(base32Decode(first.secret), f.clock.nowMs());
    const newCode = generateTotp(base32Decode(second.secret), f.clock.nowMs());
    if (oldCode !== newCode) {
      await expect(f.mfa.confirmEnrollment(u.id, u.email, oldCode, CLIENT)).rejects.toMatchObject({ id: 'ERR_INVALID_MFA_CODE' });
    }
    await f.mfa.confirmEnrollment(u.id, u.email, newCode, CLIENT);
    await expect(f.mfa.beginEnrollment(u.id, u.email)).rejects.toMatchObject({ kind: 'failed_precondition', id: 'ERR_TOTP_ALREADY_ENABLED' });
    await expect(f.mfa.confirmEnrollment(u.id, u.email, newCode, CLIENT)).rejects.toMatchObject({ id: 'ERR_TOTP_ALREADY_ENABLED' });
  });

  it('confirm without begin is a failed precondition', async () => {
    const u = await f.newUser();
    await expect(f.mfa.confirmEnrollment(u.id, u.email, '123456', CLIENT)).rejects.toMatchObject({ id: 'ERR_TOTP_ENROLLMENT_NOT_STARTED' });
  });

  it('stores the secret sealed, bound to its user, never as base32 or raw bytes (M2)', async () => {
    const u = await f.newUser();
    const other = await f.newUser();
    const { secret } = await f.mfa.beginEnrollment(u.id, u.email);
    const raw = base32Decode(secret);
    const dump: Array<{ t: string }> = await f.sql(`select t::text as t from totp_credentials t where user_id = ?`, [u.id]);
    expect(dump).toHaveLength(1);
    const text = dump[0]!.t;
    expect(text.toUpperCase()).not.toContain(secret);
    expect(text).not.toContain(raw.toString('hex'));
    const [row] = await f.sql<{ secret_enc: Buffer }>(`select secret_enc from totp_credentials where user_id = ?`, [u.id]);
    expect(row!.secret_enc.includes(raw)).toBe(false);
    expect(f.box.open(row!.secret_enc, `totp:${u.id}`).equals(raw)).toBe(true);
    // Copied onto another user's row, it no longer opens (aad binds it to the user).
    expect(() => f.box.open(row!.secret_enc, `totp:${other.id}`)).toThrow();
    expect(f.logs()).not.toContain(secret);
  });
});
