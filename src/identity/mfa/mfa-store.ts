import { randomUUID } from 'node:crypto';
import type { QueryResult } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The SQL of the second factor. Every "use once" rule is a single conditional UPDATE whose
 * affected-row count is the verdict: PostgreSQL re-evaluates the WHERE clause on the latest row
 * version after waiting for a concurrent writer, so of N racing claims exactly one sees 1.
 * The second factor's tables have no entities: what is not a compare-and-set here is a read or
 * delete that runs in the same transaction as one, in the same handful of statements.
 */

/**
 * "Does this user have TOTP on?" as a SQL expression over a column holding the user id: the one
 * answer to that question, read with the user row (account/user.entity.ts) and under the refresh
 * lock (session/session-store.ts) without a second round trip.
 */
export function totpEnabledSql(userIdColumn: string): string {
  return `exists (select 1 from totp_credentials t where t.user_id = ${userIdColumn} and t.confirmed_at is not null)`;
}

export interface CredentialRow {
  secretEnc: Buffer;
  confirmed: boolean;
  lastUsedStep: bigint | null;
}

export async function readCredential(em: EntityManager, userId: string): Promise<CredentialRow | null> {
  // Read in the caller's transaction, ahead of the compare-and-set on the same row (claimStep).
  const rows: Array<{ secret_enc: Buffer; confirmed_at: unknown; last_used_step: string | number | null }> = await em.execute(
    `select secret_enc, confirmed_at, last_used_step from totp_credentials where user_id = ?`,
    [userId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    secretEnc: row.secret_enc,
    confirmed: row.confirmed_at !== null,
    lastUsedStep: row.last_used_step === null ? null : BigInt(String(row.last_used_step)),
  };
}

/**
 * Inserts or replaces a pending (unconfirmed) credential. Returns false when a confirmed one is
 * in place, whether it was there before or confirmed concurrently.
 */
export async function upsertPendingCredential(em: EntityManager, userId: string, secretEnc: Buffer, now: Date): Promise<boolean> {
  // Compare-and-set: the upsert leaves a confirmed credential alone, even one confirmed concurrently.
  const res = await em.execute<QueryResult>(
    `insert into totp_credentials (user_id, secret_enc, confirmed_at, last_used_step, created_at)
     values (?, ?, null, null, ?)
     on conflict (user_id) do update
       set secret_enc = excluded.secret_enc, last_used_step = null, created_at = excluded.created_at
       where totp_credentials.confirmed_at is null`,
    [userId, secretEnc, now],
    'run',
  );
  return res.affectedRows === 1;
}

/**
 * M3/M4: accepts `step` once. The secret is part of the condition so that a step matched against
 * a secret that was replaced in the meantime (disable and re-enroll) cannot be claimed.
 * `confirm` turns a pending credential on in the same statement (M4: the confirming code's step
 * is consumed).
 */
export async function claimStep(
  em: EntityManager,
  userId: string,
  secretEnc: Buffer,
  step: bigint,
  opts: { confirmAt?: Date } = {},
): Promise<boolean> {
  const confirming = opts.confirmAt !== undefined;
  // Compare-and-set: the step only moves forward, on the secret it was matched against.
  const res = await em.execute<QueryResult>(
    `update totp_credentials
        set last_used_step = ?${confirming ? ', confirmed_at = ?' : ''}
      where user_id = ? and secret_enc = ?
        and confirmed_at is ${confirming ? '' : 'not '}null
        and (last_used_step is null or last_used_step < ?)`,
    [step.toString(), ...(confirming ? [opts.confirmAt] : []), userId, secretEnc, step.toString()],
    'run',
  );
  return res.affectedRows === 1;
}

export async function deleteCredential(em: EntityManager, userId: string): Promise<boolean> {
  // Compare-and-set: only a confirmed credential; its codes go in the same transaction.
  const res = await em.execute<QueryResult>(`delete from totp_credentials where user_id = ? and confirmed_at is not null`, [userId], 'run');
  await em.execute(`delete from backup_codes where user_id = ?`, [userId], 'run');
  return res.affectedRows === 1;
}

/**
 * M7: an administrator's reset. Removes the credential whether confirmed or pending, every backup
 * code, and the user's open challenges (which could no longer be completed anyway). True when a
 * credential or backup code was there to remove.
 */
export async function deleteSecondFactor(em: EntityManager, userId: string): Promise<boolean> {
  // Deletes whatever is there, counted, in the administrator's transaction (M7).
  const cred = await em.execute<QueryResult>(`delete from totp_credentials where user_id = ?`, [userId], 'run');
  const codes = await em.execute<QueryResult>(`delete from backup_codes where user_id = ?`, [userId], 'run');
  await em.execute(`delete from mfa_challenges where user_id = ? and consumed_at is null`, [userId], 'run');
  return cred.affectedRows > 0 || codes.affectedRows > 0;
}

export async function unusedBackupCodes(em: EntityManager, userId: string): Promise<Array<{ id: string; hash: string }>> {
  // Read ahead of the compare-and-set that claims one of them (claimBackupCode).
  const rows: Array<{ id: string; code_hash: string }> = await em.execute(
    `select id, code_hash from backup_codes where user_id = ? and used_at is null order by created_at, id`,
    [userId],
  );
  return rows.map((r) => ({ id: r.id, hash: r.code_hash }));
}

/** M5: single use under concurrency. */
export async function claimBackupCode(em: EntityManager, id: string, now: Date): Promise<boolean> {
  // Compare-and-set: used_at goes from null once.
  const res = await em.execute<QueryResult>(`update backup_codes set used_at = ? where id = ? and used_at is null`, [now, id], 'run');
  return res.affectedRows === 1;
}

/** M5: a new set voids the old one entirely, used codes included. */
export async function replaceBackupCodes(em: EntityManager, userId: string, hashes: string[], now: Date): Promise<void> {
  // Replaced as a whole inside the transaction of the claim that authorises it.
  await em.execute(`delete from backup_codes where user_id = ?`, [userId], 'run');
  for (const hash of hashes) {
    await em.execute(`insert into backup_codes (id, user_id, code_hash, created_at) values (?, ?, ?, ?)`, [randomUUID(), userId, hash, now], 'run');
  }
}

export interface NewChallenge {
  userId: string;
  tokenHash: Buffer;
  amr: string[];
  expiresAt: Date;
  now: Date;
  clientIp: string;
  userAgent: string;
}

export async function insertChallenge(em: EntityManager, c: NewChallenge): Promise<void> {
  // Old challenges of this user are of no use to anyone; this keeps the table small.
  await em.execute(`delete from mfa_challenges where user_id = ? and expires_at < ?`, [c.userId, c.now], 'run');
  await em.execute(
    `insert into mfa_challenges (id, user_id, token_hash, amr, expires_at, created_at, client_ip, user_agent)
     values (?, ?, ?, ?, ?, ?, ?, ?)`,
    [randomUUID(), c.userId, c.tokenHash, c.amr.join(' '), c.expiresAt, c.now, c.clientIp, c.userAgent],
    'run',
  );
}

export interface LiveChallenge {
  id: string;
  userId: string;
  email: string;
  amr: string[];
}

/** A challenge that could still be completed, with its (enabled) user; null otherwise. */
export async function findLiveChallenge(em: EntityManager, tokenHash: Buffer, now: Date, maxAttempts: number): Promise<LiveChallenge | null> {
  // One round trip: the live challenge and its (enabled) user, ahead of the compare-and-set below.
  const rows: Array<{ id: string; user_id: string; email: string; amr: string }> = await em.execute(
    `select c.id, c.user_id, u.email, c.amr
       from mfa_challenges c join users u on u.id = c.user_id
      where c.token_hash = ? and c.consumed_at is null and c.expires_at > ? and c.failed_attempts < ? and not u.disabled`,
    [tokenHash, now, maxAttempts],
  );
  const row = rows[0];
  if (!row) return null;
  return { id: row.id, userId: row.user_id, email: row.email, amr: row.amr.split(' ').filter(Boolean) };
}

/**
 * Charges one attempt before the code is checked, atomically, so that parallel guesses cannot
 * all slip under the limit (A3). Returns false when no attempt is left or the challenge died.
 */
export async function chargeChallengeAttempt(em: EntityManager, id: string, now: Date, maxAttempts: number): Promise<boolean> {
  // Compare-and-set: an atomic increment under the limit (A3).
  const res = await em.execute<QueryResult>(
    `update mfa_challenges set failed_attempts = failed_attempts + 1
      where id = ? and consumed_at is null and expires_at > ? and failed_attempts < ?`,
    [id, now, maxAttempts],
    'run',
  );
  return res.affectedRows === 1;
}

/** M6: single use. The attempt charged for this (successful) try is given back. */
export async function consumeChallenge(em: EntityManager, id: string, now: Date): Promise<boolean> {
  // Compare-and-set: consumed once (M6).
  const res = await em.execute<QueryResult>(
    `update mfa_challenges set consumed_at = ?, failed_attempts = greatest(failed_attempts - 1, 0)
      where id = ? and consumed_at is null and expires_at > ?`,
    [now, id, now],
    'run',
  );
  return res.affectedRows === 1;
}
