import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Every statement on `email_verification_tokens`. Using a token is one conditional UPDATE whose
 * affected row is the verdict: of N racing verifications exactly one claims it (V1 single use).
 */

/** The account a token may be issued for, read under its row lock. */
export interface VerificationTarget {
  email: string;
  disabled: boolean;
  verified: boolean;
}

/** Why a presented token cannot be used, read for the error message after a failed claim. */
export interface VerificationTokenRow {
  userId: string;
  /** The address the token was issued for. */
  email: string;
  /** The account's address now (an administrator may have changed it since). */
  userEmail: string;
  userDisabled: boolean;
  expiresAt: Date;
  consumedAt: Date | null;
  supersededAt: Date | null;
}

/**
 * Row-locks the user, then (when the account exists, is enabled and unverified) stores a new
 * token bound to its current address and supersedes every older one still live (newest only),
 * in the caller's transaction. Returns what it found of the account, or null when it is gone.
 */
export async function issueVerificationToken(
  em: EntityManager,
  userId: string,
  tokenHash: Buffer,
  now: Date,
  expiresAt: Date,
): Promise<VerificationTarget | null> {
  // Lock: the user row serialises concurrent issues for one account, so the supersede below sees
  // every token committed before it and exactly one token stays live.
  const users: Array<{ email: string; disabled: boolean; verified: boolean }> = await em.execute(
    `select email, disabled, email_verified_at is not null as verified from users where id = ? for update`,
    [userId],
  );
  const user = users[0];
  if (!user) return null;
  if (user.disabled || user.verified) return user;
  // Compare-and-set: only tokens still live become superseded (a used one keeps its consumed_at).
  await em.execute(
    `update email_verification_tokens set superseded_at = ? where user_id = ? and consumed_at is null and superseded_at is null`,
    [now, userId],
    'run',
  );
  // Insert beside the supersede above, in the same transaction (the table has no entity).
  await em.execute(
    `insert into email_verification_tokens (id, user_id, email, token_hash, expires_at, created_at) values (?, ?, ?, ?, ?, ?)`,
    [randomUUID(), userId, user.email, tokenHash, expiresAt, now],
    'run',
  );
  return user;
}

/** The token's state and its user, or null for a token never issued. */
export async function readVerificationToken(em: EntityManager, tokenHash: Buffer): Promise<VerificationTokenRow | null> {
  // A read joined with the user, to explain a refusal (used, replaced, expired, address changed).
  const rows: Array<{
    user_id: string;
    email: string;
    user_email: string;
    disabled: boolean;
    expires_at: Date;
    consumed_at: Date | null;
    superseded_at: Date | null;
  }> = await em.execute(
    `select t.user_id, t.email::text as email, u.email::text as user_email, u.disabled, t.expires_at, t.consumed_at, t.superseded_at
       from email_verification_tokens t join users u on u.id = t.user_id
      where t.token_hash = ?`,
    [tokenHash],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    userId: r.user_id,
    email: r.email,
    userEmail: r.user_email,
    userDisabled: r.disabled,
    expiresAt: new Date(r.expires_at),
    consumedAt: r.consumed_at === null ? null : new Date(r.consumed_at),
    supersededAt: r.superseded_at === null ? null : new Date(r.superseded_at),
  };
}

/**
 * Uses the token once: its user id, or null when it was used, superseded or expired meanwhile,
 * or its account is disabled or no longer has the address the token was issued for.
 */
export async function claimVerificationToken(em: EntityManager, tokenHash: Buffer, now: Date): Promise<string | null> {
  // Compare-and-set: live, unexpired, unused and still the account's address in one statement,
  // so a token is used at most once and never for an address the account no longer has.
  const rows: Array<{ user_id: string }> = await em.execute(
    `update email_verification_tokens t set consumed_at = ?
      where t.token_hash = ? and t.consumed_at is null and t.superseded_at is null and t.expires_at > ?
        and exists (select 1 from users u where u.id = t.user_id and u.email = t.email and not u.disabled)
      returning t.user_id`,
    [now, tokenHash, now],
  );
  return rows[0]?.user_id ?? null;
}

/** True while the user holds a token that would still verify (not used, not replaced, not expired). */
export async function hasLiveVerificationToken(em: EntityManager, userId: string, now: Date): Promise<boolean> {
  // Served by the one-live-token partial index; a plain read, no lock.
  const rows: Array<{ n: number }> = await em.execute(
    `select count(*)::int as n from email_verification_tokens
      where user_id = ? and consumed_at is null and superseded_at is null and expires_at > ?`,
    [userId, now],
  );
  return (rows[0]?.n ?? 0) > 0;
}
