import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { PasswordPolicy } from './policy.js';

const policy = new PasswordPolicy();

/** The LatchError check() threw, or undefined when it accepted the password. */
function rejection(password: string, email?: string, field?: string, p = policy): LatchError | undefined {
  try {
    p.check(password, { email }, field);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    return e as LatchError;
  }
}

const idOf = (password: string, email?: string) => rejection(password, email)?.id;

describe('PasswordPolicy length (P1)', () => {
  it('needs 15 code points: 14 is too short, 15 passes', () => {
    const e = rejection('kx7#mq2!vb9@wz', undefined, 'new_password');
    expect(e).toMatchObject({
      kind: 'invalid_argument',
      id: 'ERR_PASSWORD_TOO_SHORT',
      message: 'password must be at least 15 characters',
      field: 'new_password',
    });
    expect(rejection('kx7#mq2!vb9@wz4')).toBeUndefined();
  });

  it('counts a 4-byte emoji as one character', () => {
    const fifteen = '🐎🐄🐖🐑🐐🐓🐕🐈🐁🐇🦊🦝🐻🐼🐨';
    expect(fifteen.length).toBe(30);
    expect(rejection(fifteen)).toBeUndefined();
    expect(idOf(fifteen.slice(0, 28))).toBe('ERR_PASSWORD_TOO_SHORT'); // 14 emoji, 28 UTF-16 units
  });

  it('counts after NFKC: a ligature grows, decomposed accents shrink', () => {
    const withLigature = 'ﬁrm7#quake%lox'; // 14 code points as typed, "firm7#quake%lox" = 15 after NFKC
    expect(Array.from(withLigature)).toHaveLength(14);
    expect(rejection(withLigature)).toBeUndefined();

    const decomposed = 'a\u0301e\u0301i\u0301o\u0301u\u0301n\u0303c\u0327y\u0301' + 'q7#zk!'; // 22 typed, 14 after
    expect(Array.from(decomposed)).toHaveLength(22);
    expect(idOf(decomposed)).toBe('ERR_PASSWORD_TOO_SHORT');
  });

  it('accepts 64 characters and far more, with no composition rules', () => {
    const sixtyFour = 'all lower case words and no digits or symbols are fine for us ok';
    expect(sixtyFour).toHaveLength(64);
    expect(rejection(sixtyFour)).toBeUndefined();
    expect(rejection(randomBytes(512).toString('hex'))).toBeUndefined(); // exactly 1024 bytes
  });

  it('refuses more than 1024 bytes as TOO_LONG, before looking at anything else', () => {
    const e = rejection(randomBytes(512).toString('hex') + 'x', undefined, 'new_password');
    expect(e).toMatchObject({ kind: 'invalid_argument', id: 'ERR_PASSWORD_TOO_LONG', field: 'new_password' });
    // 342 × "€": only 342 characters, but 1026 bytes.
    expect(idOf('€'.repeat(342))).toBe('ERR_PASSWORD_TOO_LONG');
    // Also a too-long common password and one containing the service name: the cap comes first.
    expect(idOf('password'.repeat(200))).toBe('ERR_PASSWORD_TOO_LONG');
  });

  it('refuses a huge input without normalising it', () => {
    // 8 MiB of ligatures would expand under NFKC; the cap must answer without that work.
    const huge = 'ﬁ'.repeat(8 * 1024 * 1024);
    const started = performance.now();
    expect(idOf(huge)).toBe('ERR_PASSWORD_TOO_LONG');
    expect(performance.now() - started).toBeLessThan(50);
  });

  it('honours a configured minimum', () => {
    const p = new PasswordPolicy({ minLength: 20 });
    expect(rejection('kx7#mq2!vb9@wz4rt5y', undefined, undefined, p)?.message).toBe(
      'password must be at least 20 characters',
    );
    expect(rejection('kx7#mq2!vb9@wz4rt5yu', undefined, undefined, p)).toBeUndefined();
  });
});

describe('PasswordPolicy blocklist (P2)', () => {
  it('ships a list of common passwords, lower-cased, including long ones', () => {
    const lines = readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(300);
    expect(lines.length).toBeLessThanOrEqual(1100);
    for (const l of lines) expect(l).toBe(l.normalize('NFKC').toLowerCase());
    for (const w of ['password', '123456789012345', 'passwordpassword', 'qwertyuiopasdfghjkl']) {
      expect(lines).toContain(w);
    }
    expect(lines.filter((l) => Array.from(l).length >= 15).length).toBeGreaterThanOrEqual(150);
  });

  it.each([
    '123456789012345',
    'PasswordPassword',
    'QWERTYUIOPASDFGHJKL',
    'iloveyouiloveyou',
    'correcthorsebatterystaple',
    'Correct Horse Battery Staple',
    'thequickbrownfoxjumpsoverthelazydog',
  ])('refuses the listed %s, ignoring case', (pw) => {
    expect(rejection(pw)).toMatchObject({
      kind: 'invalid_argument',
      id: 'ERR_PASSWORD_COMMON',
      message: 'this password is too common',
      field: 'password',
    });
  });

  it('compares after NFKC: full-width letters are the same password', () => {
    expect(idOf('ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ')).toBe('ERR_PASSWORD_COMMON');
  });

  it.each([
    ['one character repeated', 'aaaaaaaaaaaaaaaa'],
    ['one emoji repeated', '🔑'.repeat(16)],
    ['an ascending run', 'abcdefghijklmnopq'],
    ['a descending run', 'zyxwvutsrqponmlk'],
    ['digits wrapping past 9', '567890123456789012'],
    ['a short unit repeated', 'abc123abc123abc123'],
    ['a listed word repeated', 'monkeymonkeymonkey'],
    ['a short unit repeated with a partial tail', 'xq7!xq7!xq7!xq7!x'],
  ])('refuses %s', (_, pw) => {
    expect(idOf(pw)).toBe('ERR_PASSWORD_COMMON');
  });

  it('accepts a repetition whose unit is itself long enough and not common', () => {
    expect(rejection('violet kettle drum, violet kettle drum, ')).toBeUndefined();
  });

  it('uses the blocklist at a lower configured minimum too', () => {
    const p = new PasswordPolicy({ minLength: 8 });
    expect(rejection('password', undefined, undefined, p)?.id).toBe('ERR_PASSWORD_COMMON');
    expect(rejection('Iloveyou1', undefined, undefined, p)?.id).toBe('ERR_PASSWORD_COMMON');
    expect(rejection('gx8!pq2w', undefined, undefined, p)).toBeUndefined();
  });
});

describe('PasswordPolicy context words (P2)', () => {
  it('refuses the email local part, case-insensitively', () => {
    expect(rejection('my name is Alice.Smith indeed', 'alice.smith@example.com', 'new_password')).toMatchObject({
      kind: 'invalid_argument',
      id: 'ERR_PASSWORD_CONTEXT',
      message: 'password must not contain your email name or the service name',
      field: 'new_password',
    });
    expect(rejection('my name is alice smith indeed', 'alice.smith@example.com')).toBeUndefined();
  });

  it('refuses the local part before a +tag', () => {
    expect(idOf('carol sings in the rain daily', 'carol+work@example.com')).toBe('ERR_PASSWORD_CONTEXT');
  });

  it('ignores local parts shorter than 4 characters', () => {
    expect(rejection('bob likes long walks at night', 'bob@example.com')).toBeUndefined();
  });

  it('refuses the service name, with or without an email', () => {
    expect(idOf('the LATCH on my gate squeaks')).toBe('ERR_PASSWORD_CONTEXT');
    expect(idOf('the Ｌａｔｃｈ on my gate squeaks', 'dora@example.com')).toBe('ERR_PASSWORD_CONTEXT');
  });
});
