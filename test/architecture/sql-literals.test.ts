import { describe, expect, it } from 'vitest';
import { findSqlLiterals, mayHoldSql, needsReasonAbove, SQL_STATEMENT_START } from './sql-literals.js';

describe('recognising SQL statements', () => {
  it.each([
    'select 1',
    'SELECT id FROM users WHERE email = ?',
    '\n      select pg_advisory_xact_lock(?)',
    'insert into outbox (id) values (?)',
    'update users set disabled = true where id = ?',
    'Update "sessions" SET revoked_at = now()',
    'delete from backup_codes where user_id = ?',
    'with due as (select id from outbox) update outbox set claimed = true',
    'WITH RECURSIVE t(n) AS (select 1) select * from t',
    'lock table signing_keys in exclusive mode',
    'create table users (id uuid primary key)',
    'create unique index users_email on users (email)',
    'alter table users add column x int',
    'drop table if exists users',
    'truncate users',
    'set local lock_timeout = 1000',
    'begin',
  ])('flags %j', (text) => {
    expect(SQL_STATEMENT_START.test(text)).toBe(true);
  });

  it.each([
    'updated_at',
    'delete the account',
    'deleted_at is null',
    'email = ?',
    'users',
    'with the given id',
    'Select',
    'selected',
    'insert a row',
    'setting up',
  ])('passes %j', (text) => {
    expect(SQL_STATEMENT_START.test(text)).toBe(false);
  });
});

const fixture = [
  "const ping = 'select 1';",
  '',
  'export async function claim(em: EntityManager, id: string, now: Date) {',
  '  // Compare-and-set: only the first of two racing requests consumes the code.',
  '  await em.execute(`update backup_codes set used_at = ? where id = ? and used_at is null`, [now, id]);',
  '',
  '  await em.execute(`delete from backup_codes where user_id = ?`, [userId]);',
  '  const rows = await em.execute(',
  '    // A lock: the bootstrap runs once across replicas.',
  "    'select pg_advisory_xact_lock(?)',",
  '    [KEY],',
  '  );',
  '}',
  '',
  '/** A doc comment describes the function, it is not the reason for the statement inside. */',
  'export async function replace(em: EntityManager, hashes: string[]) {',
  '  await em.execute(`delete from backup_codes where user_id = ?`, [userId]);',
  '}',
  '',
  'export async function reset(em: EntityManager, userId: string) {',
  '  // Deletes whatever is there, in the caller\'s transaction: one reason for the run below.',
  '  await em.execute(`delete from totp_credentials where user_id = ?`, [userId]);',
  '  for (const hash of hashes) {',
  '    await em.execute(`insert into backup_codes (hash) values (?)`, [hash]);',
  '  }',
  '}',
  '',
  'const q = `with due as (',
  '  select id from outbox',
  ') update outbox set claimed_at = ${now}`;',
  'const where = `user_id = ?`;',
].join('\n');

describe('finding SQL literals in a file', () => {
  const found = findSqlLiterals('src/identity/x/fixture-store.ts', fixture);

  it('finds string and template literals that open a statement, with their line', () => {
    expect(found.map((l) => l.line)).toEqual([1, 5, 7, 10, 17, 22, 24, 28]);
    expect(found[1]!.excerpt).toBe('update backup_codes set used_at = ? where id = ? and used_at is null');
  });

  it('sees a reason heading the paragraph of the statement, and its absence', () => {
    expect(found.map((l) => [l.line, l.hasReasonAbove])).toEqual([
      [1, false], // nothing above
      [5, true], // comment directly above
      [7, false], // a blank line separates it from the comment above
      [10, true], // comment directly above the literal inside the call
      [17, false], // only the function's doc comment
      [22, true], // comment directly above
      [24, true], // same paragraph as the statement under the comment
      [28, false], // nothing above
    ]);
  });

  it('allows SQL in stores and persistence/ only, and asks stores for the reason', () => {
    expect(mayHoldSql('src/identity/account/user-store.ts')).toBe(true);
    expect(mayHoldSql('src/identity/persistence/migrations/0001-initial.ts')).toBe(true);
    expect(mayHoldSql('src/identity/persistence/database.ts')).toBe(true);
    expect(mayHoldSql('src/identity/account/account-service.ts')).toBe(false);
    expect(mayHoldSql('src/identity/admin/bootstrap.ts')).toBe(false);
    expect(mayHoldSql('src/identity/store.ts')).toBe(false);
    expect(needsReasonAbove('src/identity/session/session-store.ts')).toBe(true);
    expect(needsReasonAbove('src/identity/persistence/migrations/0001-initial.ts')).toBe(false);
  });
});
