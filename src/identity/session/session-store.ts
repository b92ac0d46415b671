import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Role } from '../account/user.entity.js';
import { totpEnabledSql } from '../mfa/mfa-store.js';
import { prepared, runPrepared } from '../persistence/prepared.js';

/**
 * Every read and write of `sessions` and `refresh_tokens`. There is no entity for either: each
 * statement below is a lock, a compare-and-set or a one-statement rotation, which the unit of
 * work cannot express. Methods taking `em` run inside the caller's transaction.
 */

export interface NewSession {
  sessionId: string;
  userId: string;
  amr: string[];
  userAgent: string;
  clientIp: string;
  now: Date;
  familyExpiresAt: Date;
  tokenId: string;
  tokenHash: Buffer;
  tokenExpiresAt: Date;
}

/** A presented refresh token, its family and its user, as of the row lock. */
export interface LockedToken {
  id: string;
  sessionId: string;
  userId: string;
  expiresAt: Date | string;
  consumedAt: Date | string | null;
  successorTokenEnc: Buffer | null;
  parentId: string | null;
  sessionExpiresAt: Date | string;
  sessionRevokedAt: Date | string | null;
  amr: string;
  /** The user's fields under the names account/user-view.ts reads. */
  user: { id: string; email: string; role: Role; disabled: boolean; passwordMustChange: boolean; totpEnabled: boolean; emailVerifiedAt: Date | string | null; createdAt: Date | string };
}

/** The fast path's successor: everything but what the presented token's row decides. */
export interface LiveRotation {
  now: Date;
  /** now + the idle TTL; the successor expires at the earlier of this and the family's end. */
  idleExpiresAt: Date;
  presentedHash: Buffer;
  successor: { id: string; hash: Buffer; sealedForGrace: Buffer };
}

/** What a fast-path rotation read from the consumed token's row, its family and its user. */
export type RotatedLive = Pick<LockedToken, 'id' | 'sessionId' | 'userId' | 'amr' | 'user'> & { successorExpiresAt: Date | string };

export interface Rotation {
  now: Date;
  consumed: { id: string; parentId: string | null; sessionId: string; userId: string };
  successor: { id: string; hash: Buffer; sealedForGrace: Buffer; expiresAt: Date };
}

export interface SessionRow {
  id: string;
  createdAt: Date | string;
  lastUsedAt: Date | string;
  expiresAt: Date | string;
  userAgent: string | null;
  clientIp: string | null;
}

/** Which session to end: by id, by id when it is the user's, or by any token of its family. */
export type SessionMatch = { sessionId: string; userId?: string } | { tokenHash: Buffer };

/** The WHERE clause for a match; constants only, so no caller text reaches the SQL. */
function sessionWhere(m: SessionMatch): { where: string; params: unknown[] } {
  if ('tokenHash' in m) return { where: 'id = (select session_id from refresh_tokens where token_hash = ?)', params: [m.tokenHash] };
  if (m.userId !== undefined) return { where: 'id = ? and user_id = ?', params: [m.sessionId, m.userId] };
  return { where: 'id = ?', params: [m.sessionId] };
}

export class SessionStore {
  constructor(private readonly orm: MikroORM) {}

  async insertFamily(em: EntityManager, s: NewSession): Promise<void> {
    // One statement (one round trip, atomic on its own): the family and its first token.
    await em.execute(
      `with s as (
         insert into sessions (id, user_id, amr, user_agent, client_ip, created_at, last_used_at, expires_at)
         values (?, ?, ?, ?, ?, ?, ?, ?) returning id
       )
       insert into refresh_tokens (id, session_id, user_id, token_hash, created_at, expires_at)
       select ?, s.id, ?, ?, ?, ? from s`,
      [
        s.sessionId, s.userId, s.amr.join(' '), s.userAgent, s.clientIp, s.now, s.now, s.familyExpiresAt,
        s.tokenId, s.userId, s.tokenHash, s.now, s.tokenExpiresAt,
      ],
      'run',
    );
  }

  /** R3: the presented token, row-locked until the transaction ends, so parallel refreshes serialise. */
  async lockToken(em: EntityManager, hash: Buffer): Promise<LockedToken | undefined> {
    // Lock: `for update of rt`; the family and the user come along in the same round trip.
    const rows: Array<Omit<LockedToken, 'user'> & { email: string; role: Role; disabled: boolean; passwordMustChange: boolean; totpEnabled: boolean; emailVerifiedAt: Date | string | null; userCreatedAt: Date | string }> =
      await em.execute(
        `select rt.id, rt.session_id as "sessionId", rt.user_id as "userId", rt.expires_at as "expiresAt", rt.consumed_at as "consumedAt",
                rt.successor_token_enc as "successorTokenEnc", rt.parent_id as "parentId",
                s.expires_at as "sessionExpiresAt", s.revoked_at as "sessionRevokedAt", s.amr,
                u.email, u.role, u.disabled, u.password_must_change as "passwordMustChange", u.created_at as "userCreatedAt",
                u.email_verified_at as "emailVerifiedAt",
                ${totpEnabledSql('u.id')} as "totpEnabled"
           from refresh_tokens rt
           join sessions s on s.id = rt.session_id
           join users u on u.id = rt.user_id
          where rt.token_hash = ?
          for update of rt`,
        [hash],
      );
    const r = rows[0];
    if (!r) return undefined;
    const { email, role, disabled, passwordMustChange, totpEnabled, emailVerifiedAt, userCreatedAt, ...token } = r;
    return { ...token, user: { id: r.userId, email, role, disabled, passwordMustChange, totpEnabled, emailVerifiedAt, createdAt: userCreatedAt } };
  }

  /**
   * R3: the common case of a refresh as one statement, outside any transaction (a statement is
   * atomic on its own): lock the presented token's row, and only when it is unconsumed and
   * unexpired, its family live and its user enabled, consume it, drop its parent's kept copy,
   * touch the session and insert the successor. Undefined when the row did not qualify, including
   * when a parallel rotation consumed it while this one waited on the lock (PostgreSQL re-checks
   * the conditions on the newest row version); the caller then takes the transactional path,
   * which decides between the grace window, reuse and invalid.
   */
  async rotateLive(r: LiveRotation): Promise<RotatedLive | undefined> {
    // Lock: `for update of rt` in the first CTE; the writes below read only the locked row.
    const rows: Array<Omit<RotatedLive, 'user'> & { email: string; role: Role; disabled: boolean; passwordMustChange: boolean; totpEnabled: boolean; emailVerifiedAt: Date | string | null; userCreatedAt: Date | string }> =
      await runPrepared(this.orm, ROTATE_LIVE, [
          r.idleExpiresAt, r.presentedHash, r.now, r.now,
          r.now, r.successor.id, r.successor.sealedForGrace,
          r.now,
          r.successor.id, r.successor.hash, r.now,
        ]);
    const row = rows[0];
    if (!row) return undefined;
    const { email, role, disabled, passwordMustChange, totpEnabled, emailVerifiedAt, userCreatedAt, ...token } = row;
    return { ...token, user: { id: row.userId, email, role, disabled, passwordMustChange, totpEnabled, emailVerifiedAt, createdAt: userCreatedAt } };
  }

  /** R4: the expiry of the successor handed out again within the grace window. */
  async successorExpiry(em: EntityManager, successorHash: Buffer): Promise<Date | string> {
    // Read under the presented token's lock, in the rotation's transaction.
    const rows: { expires_at: Date | string }[] = await em.execute(`select expires_at from refresh_tokens where token_hash = ?`, [successorHash]);
    return rows[0]!.expires_at;
  }

  async rotate(em: EntityManager, r: Rotation): Promise<void> {
    // One-statement rotation: consume the presented token (keeping its successor for the grace
    // window), drop the older copy kept by its parent (only the newest consumed token needs one),
    // touch the session, and insert the successor.
    await em.execute(
      `with consumed as (
         update refresh_tokens set consumed_at = ?, successor_id = ?, successor_token_enc = ? where id = ?
       ), parent as (
         update refresh_tokens set successor_token_enc = null where id = ?
       ), touched as (
         update sessions set last_used_at = ? where id = ?
       )
       insert into refresh_tokens (id, session_id, user_id, token_hash, parent_id, created_at, expires_at) values (?, ?, ?, ?, ?, ?, ?)`,
      [
        r.now, r.successor.id, r.successor.sealedForGrace, r.consumed.id,
        r.consumed.parentId,
        r.now, r.consumed.sessionId,
        r.successor.id, r.consumed.sessionId, r.consumed.userId, r.successor.hash, r.consumed.id, r.now, r.successor.expiresAt,
      ],
      'run',
    );
  }

  async revokeAllOf(em: EntityManager, userId: string, reason: string, now: Date): Promise<void> {
    // Compare-and-set: a session already ended keeps the reason and instant it ended with.
    await em.execute(`update sessions set revoked_at = ?, revoke_reason = ? where user_id = ? and revoked_at is null`, [now, reason, userId], 'run');
  }

  /** The live session matching `where`, now revoked; undefined when none matched. */
  async revokeOne(em: EntityManager, match: SessionMatch, reason: string, now: Date): Promise<{ id: string; userId: string } | undefined> {
    const { where, params } = sessionWhere(match);
    // Compare-and-set: of two racing revocations exactly one gets the row back.
    const rows: { id: string; user_id: string }[] = await em.execute(
      `update sessions set revoked_at = ?, revoke_reason = ? where revoked_at is null and ${where} returning id, user_id`,
      [now, reason, ...params],
    );
    const row = rows[0];
    return row ? { id: row.id, userId: row.user_id } : undefined;
  }

  /** Live sessions that still hold a usable refresh token, most recently used first. */
  async listLive(userId: string, now: Date): Promise<SessionRow[]> {
    // One round trip over both tables, which have no entities (see above).
    return this.orm.em.fork().execute(
      `select id, created_at as "createdAt", last_used_at as "lastUsedAt", expires_at as "expiresAt", user_agent as "userAgent", client_ip as "clientIp"
         from sessions
        where user_id = ? and revoked_at is null and expires_at > ?
          and exists (select 1 from refresh_tokens rt where rt.session_id = sessions.id and rt.consumed_at is null and rt.expires_at > ?)
        order by last_used_at desc limit 100`,
      [userId, now, now],
    );
  }
}

/** SessionStore.rotateLive: find, lock, consume and replace a live refresh token in one statement. */
const ROTATE_LIVE = prepared(
  'latch_rotate_live',
  `with presented as (
           select rt.id, rt.session_id, rt.user_id, rt.parent_id, s.amr, least($1::timestamptz, s.expires_at) as successor_expires_at,
                  u.email, u.role, u.disabled, u.password_must_change, u.email_verified_at, u.created_at, ${totpEnabledSql('u.id')} as totp_enabled
             from refresh_tokens rt
             join sessions s on s.id = rt.session_id
             join users u on u.id = rt.user_id
            where rt.token_hash = $2 and rt.consumed_at is null and rt.expires_at > $3
              and s.revoked_at is null and s.expires_at > $4 and not u.disabled
            for update of rt
         ), consumed as (
           update refresh_tokens t set consumed_at = $5, successor_id = $6, successor_token_enc = $7 from presented p where t.id = p.id
         ), parent as (
           update refresh_tokens t set successor_token_enc = null from presented p where t.id = p.parent_id
         ), touched as (
           update sessions t set last_used_at = $8 from presented p where t.id = p.session_id
         ), successor as (
           insert into refresh_tokens (id, session_id, user_id, token_hash, parent_id, created_at, expires_at)
           select $9, p.session_id, p.user_id, $10, p.id, $11, p.successor_expires_at from presented p
         )
         select p.id, p.session_id as "sessionId", p.user_id as "userId", p.amr, p.successor_expires_at as "successorExpiresAt",
                p.email, p.role, p.disabled, p.password_must_change as "passwordMustChange", p.email_verified_at as "emailVerifiedAt", p.created_at as "userCreatedAt", p.totp_enabled as "totpEnabled"
           from presented p`,
);
