import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Every statement on `password_reset_tokens`. Using a token is one conditional UPDATE whose
 * affected row is the verdict: of N racing completions exactly one claims it (F2 single use).
 */

/** Why a presented token cannot be used, read for the error message after a failed claim. */
export interface ResetTokenRow {
  userId: string;
  email: string;
  userDisabled: boolean;
  expiresAt: Date;
  consumedAt: Date | null;
  supersededAt: Date | null;
}

/**
 * Stores a new token for the user and supersedes every older one still live (newest only), in the
 * caller's transaction. Returns false when the user is gone or disabled.
 */
export async function issueResetToken(em: EntityManager, userId: string, tokenHash: Buffer, now: Date, expiresAt: Date): Promise<boolean> {
  // Lock: the user row serialises concurrent requests for one account, so the supersede below
  // sees every token committed before it and exactly one token stays live.
  const users: Array<{ disabled: boolean }> = await em.execute(`select disabled from users where id = ? for update`, [userId]);
  if (users.length === 0 || users[0]!.disabled) return false;
  // Compare-and-set: only tokens still live become superseded (a used one keeps its consumed_at).
  await em.execute(
    `update password_reset_tokens set superseded_at = ? where user_id = ? and consumed_at is null and superseded_at is null`,
    [now, userId],
    'run',
  );
  // Insert beside the supersede above, in the same transaction (the table has no entity).
  await em.execute(
    `insert into password_reset_tokens (id, user_id, token_hash, expires_at, created_at) values (?, ?, ?, ?, ?)`,
    [randomUUID(), userId, tokenHash, expiresAt, now],
    'run',
  );
  return true;
}

/** The token's state and its user, or null for a token never issued. */
export async function readResetToken(em: EntityManager, tokenHash: Buffer): Promise<ResetTokenRow | null> {
  // A read joined with the user, to explain a refusal and to check the new password against the email.
  const rows: Array<{ user_id: string; email: string; disabled: boolean; expires_at: Date; consumed_at: Date | null; superseded_at: Date | null }> =
    await em.execute(
      `select t.user_id, u.email, u.disabled, t.expires_at, t.consumed_at, t.superseded_at
         from password_reset_tokens t join users u on u.id = t.user_id
        where t.token_hash = ?`,
      [tokenHash],
    );
  const r = rows[0];
  if (!r) return null;
  return {
    userId: r.user_id,
    email: r.email,
    userDisabled: r.disabled,
    expiresAt: new Date(r.expires_at),
    consumedAt: r.consumed_at === null ? null : new Date(r.consumed_at),
    supersededAt: r.superseded_at === null ? null : new Date(r.superseded_at),
  };
}

/** Uses the token once: its user id, or null when it was used, superseded or expired meanwhile. */
export async function claimResetToken(em: EntityManager, tokenHash: Buffer, now: Date): Promise<string | null> {
  // Compare-and-set: live, unexpired and unused in one statement, so a token is used at most once.
  const rows: Array<{ user_id: string }> = await em.execute(
    `update password_reset_tokens set consumed_at = ?
      where token_hash = ? and consumed_at is null and superseded_at is null and expires_at > ?
      returning user_id`,
    [now, tokenHash, now],
  );
  return rows[0]?.user_id ?? null;
}
