import { randomUUID } from 'node:crypto';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { LatchError } from '../../shared/errors.js';
import { totpEnabledSql } from '../mfa/mfa-store.js';
import { prepared, runPrepared } from '../persistence/prepared.js';
import { UserEntity, type Role, type User } from './user.entity.js';
import type { UserFields } from './user-view.js';

/** Any constant shared by every replica; serialises bootstraps so exactly one admin is created. */
const BOOTSTRAP_LOCK = 0x6c617463; // "latc"

export interface NewUser {
  email: string;
  passwordHash: string;
  role: Role;
  passwordMustChange: boolean;
  /** An address the operator vouched for (the bootstrapped admin) starts verified. */
  emailVerified?: boolean;
}

export type UserPatch = Partial<{ disabled: boolean; role: Role; passwordMustChange: boolean }>;

export interface UserListQuery {
  /** Emails strictly after this one (keyset paging). */
  after?: string;
  /** Already in stored form (trimmed, NFC, lower-case). */
  emailPrefix?: string;
  limit: number;
}

/** What Introspect and GetCurrentUser need of a user, and the sessions of theirs ended one by one lately. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TokenStateRow {
  email: string;
  role: Role;
  disabled: boolean;
  passwordMustChange: boolean;
  tokensValidAfter: Date | string;
  createdAt: Date | string;
  totpEnabled: boolean;
  emailVerified: boolean;
  revokedIds: string[] | null;
  revokedCount: number | null;
  revokedOldest: Date | string | null;
}

/** UserStore.findForSignIn: the fields of a user a password sign-in reads. */
export interface SignInUser extends UserFields {
  passwordHash: string;
  totpEnabled: boolean;
}

/**
 * Every read and write of the `users` table. Methods taking `em` run inside the caller's
 * transaction; the others open their own.
 */
export class UserStore {
  constructor(private readonly orm: MikroORM) {}

  private em(em?: EntityManager): EntityManager {
    return em ?? this.orm.em.fork();
  }

  /** Inserts a user; a taken email is ALREADY_EXISTS (ERR_EMAIL_TAKEN). */
  async insert(user: NewUser, nowMs: number, tx?: EntityManager): Promise<User> {
    const em = this.em(tx);
    const now = new Date(nowMs);
    const row = em.create(UserEntity, {
      id: randomUUID(),
      email: user.email,
      passwordHash: user.passwordHash,
      role: user.role,
      disabled: false,
      passwordMustChange: user.passwordMustChange,
      emailVerifiedAt: user.emailVerified ? now : null,
      tokensValidAfter: new Date(0),
      createdAt: now,
      updatedAt: now,
    });
    try {
      await em.persist(row).flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new LatchError('already_exists', 'ERR_EMAIL_TAKEN', 'an account with this email already exists');
      }
      throw err;
    }
    return row;
  }

  findById(id: string, tx?: EntityManager): Promise<User | null> {
    return this.em(tx).findOne(UserEntity, { id });
  }

  findByEmail(email: string): Promise<User | null> {
    return this.em().findOne(UserEntity, { email });
  }

  /**
   * What a sign-in needs of the account behind `email` (already in stored form), hash included,
   * in one round trip; null when there is none. A named prepared statement on the pooled
   * connection, without the entity manager: the ORM's fork, query building and entity
   * hydration cost the event loop about half a millisecond per sign-in.
   */
  async findForSignIn(email: string): Promise<SignInUser | null> {
    const rows: SignInUser[] = await runPrepared(this.orm, USER_FOR_SIGN_IN, [email]);
    return rows[0] ?? null;
  }

  emailTaken(email: string, tx?: EntityManager): Promise<boolean> {
    return this.em(tx).count(UserEntity, { email }).then((n) => n > 0);
  }

  countAdmins(tx?: EntityManager): Promise<number> {
    return this.em(tx).count(UserEntity, { role: 'admin' });
  }

  list(q: UserListQuery): Promise<User[]> {
    const email: Record<string, string> = {};
    if (q.after !== undefined) email.$gt = q.after;
    if (q.emailPrefix) email.$like = `${q.emailPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const where = Object.keys(email).length > 0 ? { email } : {};
    return this.em().find(UserEntity, where, { orderBy: { email: 'asc' }, limit: q.limit });
  }

  /** Changes what an administrator may change; written when the caller's transaction flushes. */
  update(em: EntityManager, user: User, patch: UserPatch, nowMs: number): void {
    em.assign(user, { ...patch, updatedAt: new Date(nowMs) });
  }

  /** A new password hash; clears password_must_change. */
  async setPassword(em: EntityManager, userId: string, passwordHash: string, nowMs: number): Promise<void> {
    await em.nativeUpdate(UserEntity, { id: userId }, { passwordHash, passwordMustChange: false, updatedAt: new Date(nowMs) });
  }

  /** The address was proved by its owner; keeps the first instant when it already was. */
  async markEmailVerified(em: EntityManager, userId: string, nowMs: number): Promise<void> {
    await em.nativeUpdate(UserEntity, { id: userId, emailVerifiedAt: null }, { emailVerifiedAt: new Date(nowMs), updatedAt: new Date(nowMs) });
  }

  /** A rehash of the same password: written only if the hash is still the one that was verified. */
  async upgradePasswordHash(userId: string, verifiedHash: string, passwordHash: string, nowMs: number): Promise<void> {
    await this.em().nativeUpdate(UserEntity, { id: userId, passwordHash: verifiedHash }, { passwordHash, updatedAt: new Date(nowMs) });
  }

  /** Tokens issued before `nowMs` become inactive; never moves the instant back. */
  async bumpTokensValidAfter(em: EntityManager, userId: string, nowMs: number): Promise<void> {
    const now = new Date(nowMs);
    // Compare-and-set in one statement: greatest() keeps a later concurrent bump.
    await em.execute(`update users set tokens_valid_after = greatest(tokens_valid_after, ?), updated_at = ? where id = ?`, [now, now, userId], 'run');
  }

  /**
   * B2: the ids of the active admins, row-locked until the transaction ends. Two admins demoting
   * each other at once both queue here (in id order, so without deadlock); the second then sees
   * the first's change, since PostgreSQL re-checks the WHERE clause of a row it waited for, and
   * finds itself the last one. Locked before the target is read, so the read is current.
   */
  async lockActiveAdmins(em: EntityManager): Promise<string[]> {
    const admins = await em.find(
      UserEntity,
      { role: 'admin', disabled: false },
      { orderBy: { id: 'asc' }, lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    return admins.map((a) => a.id);
  }

  /** B1: serialises admin bootstraps across replicas until the transaction ends. */
  async lockBootstrap(em: EntityManager): Promise<void> {
    // Lock: a transaction-scoped advisory lock, since the row it guards does not exist yet.
    await em.execute(`select pg_advisory_xact_lock(?)`, [BOOTSTRAP_LOCK]);
  }

  /**
   * The user row and the sessions ended one by one within the window (those ended together with
   * a tokens_valid_after bump are covered by it and left out), newest first, at most `limit`.
   */
  async readTokenState(userId: string, revokedSince: Date, limit: number): Promise<TokenStateRow | null> {
    return (await this.readTokenStates([userId], revokedSince, limit)).get(userId) ?? null;
  }

  /**
   * readTokenState for several users in one round trip: the Introspect hot path gathers the
   * users it has to look up at the same moment (many services, many users) into one query.
   * Users that do not exist are absent from the map.
   */
  async readTokenStates(userIds: readonly string[], revokedSince: Date, limit: number): Promise<Map<string, TokenStateRow>> {
    const out = new Map<string, TokenStateRow>();
    // Ids come from verified tokens, but only a well-formed uuid goes into the array literal.
    const ids = userIds.filter((id) => UUID.test(id));
    if (ids.length === 0) return out;
    // One round trip for many users on the Introspect hot path: each user and their recently ended sessions.
    const rows: Array<TokenStateRow & { id: string }> = await runPrepared(this.orm, READ_TOKEN_STATES, [revokedSince, limit, `{${ids.join(',')}}`]);
    for (const { id, ...row } of rows) out.set(id, row);
    return out;
  }
}

/** UserStore.findForSignIn: the account, its hash and whether TOTP is on, by stored email (citext, unique). */
const USER_FOR_SIGN_IN = prepared(
  'latch_user_for_sign_in',
  `select u.id::text as id, u.email::text as email, u.password_hash as "passwordHash", u.role, u.disabled,
          u.password_must_change as "passwordMustChange", u.email_verified_at as "emailVerifiedAt", u.created_at as "createdAt",
          ${totpEnabledSql('u.id')} as "totpEnabled"
     from users u
    where u.email = $1`,
);

/** UserStore.readTokenStates: users and their recently ended sessions, by id. */
const READ_TOKEN_STATES = prepared(
  'latch_read_token_states',
  `select u.id::text as id, u.email, u.role, u.disabled, u.password_must_change as "passwordMustChange", u.tokens_valid_after as "tokensValidAfter",
              u.created_at as "createdAt", ${totpEnabledSql('u.id')} as "totpEnabled",
              u.email_verified_at is not null as "emailVerified",
              r.ids as "revokedIds", r.n as "revokedCount", r.oldest as "revokedOldest"
         from users u
         left join lateral (
           select array_agg(x.id::text order by x.revoked_at desc) as ids, count(*)::int as n, min(x.revoked_at) as oldest
             from (select s.id, s.revoked_at from sessions s
                    where s.user_id = u.id and s.revoked_at > greatest(u.tokens_valid_after, $1)
                    order by s.revoked_at desc limit $2) x
         ) r on true
        where u.id = any($3::uuid[])`,
);
