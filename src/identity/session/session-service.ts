import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SecretBox } from '../../shared/secret-box.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { SecurityAlertKind } from '../../gen/identity/events/v1/events_pb.js';
import { enqueue, securityAlert, sessionsRevoked } from '../events/outbox.js';
import type { Role } from '../account/user.entity.js';
import type { UserView } from '../account/user-view.js';
import { msOf } from '../persistence/row-values.js';
import { hashRefreshToken, looksLikeRefreshToken, newRefreshToken } from './refresh-token-value.js';

export interface SessionPolicy {
  idleTtlMs: number;
  absoluteTtlMs: number;
  graceMs: number;
}

export interface IssuedRefresh {
  sessionId: string;
  userId: string;
  amr: string[];
  refreshToken: string;
  refreshExpiresAtMs: number;
  /** The user as of this rotation, when the rotation read it anyway (saves a query). */
  user?: UserView;
}

export interface SessionSummary {
  sessionId: string;
  createdAtMs: number;
  lastUsedAtMs: number;
  expiresAtMs: number;
  userAgent: string;
  clientIp: string;
}

const invalidRefresh = () =>
  new LatchError('unauthenticated', 'ERR_INVALID_REFRESH_TOKEN', 'refresh token is invalid or expired');

/** Called after a commit that revoked tokens (all of the user's, or one session's), so caches and the relay act at once. */
export type RevokedHook = (userId: string, notBeforeMs: number, sessionId?: string) => void;

interface TokenRow {
  id: string;
  session_id: string;
  user_id: string;
  expires_at: Date | string;
  consumed_at: Date | string | null;
  successor_token_enc: Buffer | null;
  parent_id: string | null;
  session_expires_at: Date | string;
  session_revoked_at: Date | string | null;
  amr: string;
  disabled: boolean;
  email: string;
  role: Role;
  password_must_change: boolean;
  user_created_at: Date | string;
  totp_enabled: boolean;
}

/** How endSession finds its session; constants only, so no caller text reaches the SQL. */
type SessionMatch = 'id = ?' | 'id = ? and user_id = ?' | 'id = (select session_id from refresh_tokens where token_hash = ?)';

type RotateOutcome =
  | { kind: 'rotated'; issued: IssuedRefresh }
  | { kind: 'reused'; userId: string; sessionId: string; notBeforeMs: number }
  | { kind: 'invalid' };

/**
 * Refresh-token families (R1-R7). A session is one family; every refresh consumes the presented
 * token and creates its successor in one short transaction that holds a row lock on the
 * presented token, so parallel refreshes serialise on it (R3) and a rollback never counts as a
 * use (R5). JWT signing happens outside, in the caller.
 */
export class SessionService {
  constructor(
    private readonly orm: MikroORM,
    private readonly box: SecretBox,
    private readonly policy: SessionPolicy,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onRevoked: RevokedHook,
  ) {}

  /** Starts a new family inside the caller's transaction. */
  async create(em: EntityManager, userId: string, amr: string[], client: ClientInfo): Promise<IssuedRefresh> {
    const now = this.clock.nowMs();
    const sessionId = randomUUID();
    const familyExpires = now + this.policy.absoluteTtlMs;
    const refreshToken = newRefreshToken();
    const expires = Math.min(now + this.policy.idleTtlMs, familyExpires);
    // One statement (one round trip, atomic on its own): the family and its first token.
    await em.execute(
      `with s as (
         insert into sessions (id, user_id, amr, user_agent, client_ip, created_at, last_used_at, expires_at)
         values (?, ?, ?, ?, ?, ?, ?, ?) returning id
       )
       insert into refresh_tokens (id, session_id, user_id, token_hash, created_at, expires_at)
       select ?, s.id, ?, ?, ?, ? from s`,
      [
        sessionId, userId, amr.join(' '), client.userAgent.slice(0, 512), client.ip, new Date(now), new Date(now), new Date(familyExpires),
        randomUUID(), userId, hashRefreshToken(refreshToken), new Date(now), new Date(expires),
      ],
      'run',
    );
    return { sessionId, userId, amr, refreshToken, refreshExpiresAtMs: expires };
  }

  /** R2-R6. Throws unauthenticated for anything but a live token of a live family. */
  async rotate(token: string, client: ClientInfo): Promise<IssuedRefresh> {
    if (!looksLikeRefreshToken(token)) throw invalidRefresh();
    const hash = hashRefreshToken(token);
    const outcome = await this.orm.em.fork().transactional((em) => this.rotateIn(em, hash, client));
    if (outcome.kind === 'rotated') return outcome.issued;
    if (outcome.kind === 'reused') {
      this.onRevoked(outcome.userId, outcome.notBeforeMs, outcome.sessionId);
      throw new LatchError('unauthenticated', 'ERR_REFRESH_TOKEN_REUSED', 'refresh token was already used; the session has been ended');
    }
    throw invalidRefresh();
  }

  private async rotateIn(em: EntityManager, hash: Buffer, client: ClientInfo): Promise<RotateOutcome> {
    const rows: TokenRow[] = await em.execute(
      `select rt.id, rt.session_id, rt.user_id, rt.expires_at, rt.consumed_at, rt.successor_token_enc, rt.parent_id,
              s.expires_at as session_expires_at, s.revoked_at as session_revoked_at, s.amr,
              u.disabled, u.email, u.role, u.password_must_change, u.created_at as user_created_at,
              exists (select 1 from totp_credentials t where t.user_id = u.id and t.confirmed_at is not null) as totp_enabled
         from refresh_tokens rt
         join sessions s on s.id = rt.session_id
         join users u on u.id = rt.user_id
        where rt.token_hash = ?
        for update of rt`,
      [hash],
    );
    const row = rows[0];
    const now = this.clock.nowMs();
    if (!row || row.session_revoked_at || row.disabled) return { kind: 'invalid' };
    if (msOf(row.session_expires_at) <= now) return { kind: 'invalid' };
    const amr = row.amr.split(' ').filter(Boolean);
    const user: UserView = {
      id: row.user_id,
      email: row.email,
      role: row.role,
      disabled: row.disabled,
      passwordMustChange: row.password_must_change,
      totpEnabled: row.totp_enabled,
      createdAtMs: msOf(row.user_created_at),
    };

    if (row.consumed_at) {
      const sinceUse = now - msOf(row.consumed_at);
      if (sinceUse <= this.policy.graceMs && row.successor_token_enc) {
        // R4: a lost response or a second tab gets the same successor back.
        const successor = this.box.open(row.successor_token_enc, `refresh-successor:${row.id}`).toString('utf8');
        const succ: { expires_at: Date | string }[] = await em.execute(`select expires_at from refresh_tokens where token_hash = ?`, [
          hashRefreshToken(successor),
        ]);
        return {
          kind: 'rotated',
          issued: { sessionId: row.session_id, userId: row.user_id, amr, refreshToken: successor, refreshExpiresAtMs: msOf(succ[0]!.expires_at), user },
        };
      }
      // R4, R8: reuse outside the grace window ends this family and its access tokens (by `sid`);
      // the user's other sessions were not exposed by this token and stay active.
      await this.endSession(em, 'id = ?', [row.session_id], 'refresh_token_reuse', now);
      enqueue(em, securityAlert({ userId: row.user_id, email: row.email, kind: SecurityAlertKind.REFRESH_TOKEN_REUSE, clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now }), this.clock);
      await em.flush();
      this.logger.warn({ userId: row.user_id, sessionId: row.session_id, clientIp: client.ip }, 'refresh token reuse: session family revoked');
      return { kind: 'reused', userId: row.user_id, sessionId: row.session_id, notBeforeMs: now };
    }
    if (msOf(row.expires_at) <= now) return { kind: 'invalid' };

    const successor = newRefreshToken();
    const successorId = randomUUID();
    const expires = Math.min(now + this.policy.idleTtlMs, msOf(row.session_expires_at));
    // One statement: consume the presented token (keeping its successor for the grace window),
    // drop the older copy kept by its parent (only the newest consumed token needs one), touch the
    // session, and insert the successor.
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
        new Date(now), successorId, this.box.seal(Buffer.from(successor, 'utf8'), `refresh-successor:${row.id}`), row.id,
        row.parent_id,
        new Date(now), row.session_id,
        successorId, row.session_id, row.user_id, hashRefreshToken(successor), row.id, new Date(now), new Date(expires),
      ],
      'run',
    );
    return { kind: 'rotated', issued: { sessionId: row.session_id, userId: row.user_id, amr, refreshToken: successor, refreshExpiresAtMs: expires, user } };
  }

  /**
   * Logout: ends the family of the presented token (consumed or not) and its access tokens (R8).
   * Unknown tokens are ignored.
   */
  async logout(token: string): Promise<void> {
    if (!looksLikeRefreshToken(token)) return;
    await this.endOne('id = (select session_id from refresh_tokens where token_hash = ?)', [hashRefreshToken(token)], 'logout');
  }

  /**
   * R7: ends every family of the user and voids every access token issued before now, inside the
   * caller's transaction (with the sessions_revoked event). Returns the new not-before instant;
   * the caller calls `revoked()` after commit.
   */
  async revokeAllIn(em: EntityManager, userId: string, reason: string): Promise<number> {
    const now = this.clock.nowMs();
    await em.execute(`update sessions set revoked_at = ?, revoke_reason = ? where user_id = ? and revoked_at is null`, [new Date(now), reason, userId], 'run');
    await this.bumpTokensValidAfter(em, userId, now);
    enqueue(em, sessionsRevoked({ userId, notBeforeMs: now }), this.clock);
    return now;
  }

  /** Convenience for callers without a transaction of their own. */
  async revokeAll(userId: string, reason: string): Promise<void> {
    const notBefore = await this.orm.em.fork().transactional(async (em) => {
      const nb = await this.revokeAllIn(em, userId, reason);
      await em.flush();
      return nb;
    });
    this.revoked(userId, notBefore);
  }

  revoked(userId: string, notBeforeMs: number): void {
    this.onRevoked(userId, notBeforeMs);
  }

  async list(userId: string): Promise<SessionSummary[]> {
    const now = new Date(this.clock.nowMs());
    const rows: { id: string; created_at: Date | string; last_used_at: Date | string; expires_at: Date | string; user_agent: string | null; client_ip: string | null }[] =
      await this.orm.em.fork().execute(
        `select id, created_at, last_used_at, expires_at, user_agent, client_ip from sessions
          where user_id = ? and revoked_at is null and expires_at > ?
            and exists (select 1 from refresh_tokens rt where rt.session_id = sessions.id and rt.consumed_at is null and rt.expires_at > ?)
          order by last_used_at desc limit 100`,
        [userId, now, now],
      );
    return rows.map((r) => ({
      sessionId: r.id,
      createdAtMs: msOf(r.created_at),
      lastUsedAtMs: msOf(r.last_used_at),
      expiresAtMs: msOf(r.expires_at),
      userAgent: r.user_agent ?? '',
      clientIp: r.client_ip ?? '',
    }));
  }

  /**
   * Ends one of the caller's own sessions and its access tokens (R8); someone else's session id is
   * NOT_FOUND, as an unknown one.
   */
  async revokeOne(userId: string, sessionId: string): Promise<void> {
    const ended = await this.endOne('id = ? and user_id = ?', [sessionId, userId], 'revoked_by_user');
    if (!ended) throw new LatchError('not_found', 'ERR_SESSION_NOT_FOUND', 'no such active session');
  }

  /** One session, in a transaction of its own; the hook runs after commit. */
  private async endOne(where: SessionMatch, params: unknown[], reason: string): Promise<boolean> {
    const now = this.clock.nowMs();
    const ended = await this.orm.em.fork().transactional(async (em) => {
      const e = await this.endSession(em, where, params, reason, now);
      await em.flush();
      return e;
    });
    if (!ended) return false;
    this.onRevoked(ended.userId, now, ended.sessionId);
    return true;
  }

  /**
   * Marks the live session matching `where` revoked and, in the same transaction, enqueues the
   * sessions_revoked event naming it, which every replica's cache acts on (R8, I4). Undefined
   * when no live session matched. The caller flushes.
   */
  private async endSession(em: EntityManager, where: SessionMatch, params: unknown[], reason: string, now: number): Promise<{ userId: string; sessionId: string } | undefined> {
    const rows: { id: string; user_id: string }[] = await em.execute(
      `update sessions set revoked_at = ?, revoke_reason = ? where revoked_at is null and ${where} returning id, user_id`,
      [new Date(now), reason, ...params],
    );
    const row = rows[0];
    if (!row) return undefined;
    enqueue(em, sessionsRevoked({ userId: row.user_id, sessionId: row.id, notBeforeMs: now }), this.clock);
    return { userId: row.user_id, sessionId: row.id };
  }

  private async bumpTokensValidAfter(em: EntityManager, userId: string, now: number): Promise<void> {
    await em.execute(`update users set tokens_valid_after = greatest(tokens_valid_after, ?), updated_at = ? where id = ?`, [new Date(now), new Date(now), userId], 'run');
  }
}
