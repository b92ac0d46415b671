import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SecretBox } from '../../shared/secret-box.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { sessionsRevoked } from '../events/event-messages.js';
import { enqueue } from '../events/outbox-store.js';
import { securityAlert } from '../events/security-alert.js';
import type { UserStore } from '../account/user-store.js';
import { toUserView, type UserView } from '../account/user-view.js';
import { msOf } from '../persistence/row-values.js';
import type { SessionMatch, SessionStore } from './session-store.js';
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

/** Binds a kept successor to the token it succeeded (token hashes are unique), so it opens on that row only. */
const successorAad = (presentedHash: Buffer) => `refresh-successor:${presentedHash.toString('base64url')}`;

/** Called after a commit that revoked tokens (all of the user's, or one session's), so caches and the relay act at once. */
export type RevokedHook = (userId: string, notBeforeMs: number, sessionId?: string) => void;

type RotateOutcome =
  | { kind: 'rotated'; issued: IssuedRefresh }
  | { kind: 'reused'; userId: string; sessionId: string; notBeforeMs: number }
  | { kind: 'invalid' };

/**
 * Refresh-token families (R1-R7). A session is one family; every refresh consumes the presented
 * token and creates its successor atomically while holding a row lock on the presented token,
 * so parallel refreshes serialise on it (R3) and a rollback never counts as a use (R5): a live
 * token in one statement (SessionStore.rotateLive), anything else (consumed, expired, revoked,
 * unknown) in one short transaction. JWT signing happens outside, in the caller.
 */
export class SessionService {
  constructor(
    private readonly orm: MikroORM,
    private readonly store: SessionStore,
    private readonly users: UserStore,
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
    await this.store.insertFamily(em, {
      sessionId,
      userId,
      amr,
      userAgent: client.userAgent.slice(0, 512),
      clientIp: client.ip,
      now: new Date(now),
      familyExpiresAt: new Date(familyExpires),
      tokenId: randomUUID(),
      tokenHash: hashRefreshToken(refreshToken),
      tokenExpiresAt: new Date(expires),
    });
    return { sessionId, userId, amr, refreshToken, refreshExpiresAtMs: expires };
  }

  /** R2-R6. Throws unauthenticated for anything but a live token of a live family. */
  async rotate(token: string, client: ClientInfo): Promise<IssuedRefresh> {
    if (!looksLikeRefreshToken(token)) throw invalidRefresh();
    const hash = hashRefreshToken(token);
    const live = await this.rotateLive(hash);
    if (live) return live;
    const outcome = await this.orm.em.fork().transactional((em) => this.rotateIn(em, hash, client));
    if (outcome.kind === 'rotated') return outcome.issued;
    if (outcome.kind === 'reused') {
      this.onRevoked(outcome.userId, outcome.notBeforeMs, outcome.sessionId);
      throw new LatchError('unauthenticated', 'ERR_REFRESH_TOKEN_REUSED', 'refresh token was already used; the session has been ended');
    }
    throw invalidRefresh();
  }

  /** The common case in one statement (see SessionStore.rotateLive); undefined sends the caller to rotateIn. */
  private async rotateLive(hash: Buffer): Promise<IssuedRefresh | undefined> {
    const now = this.clock.nowMs();
    const successor = newRefreshToken();
    const row = await this.store.rotateLive({
      now: new Date(now),
      idleExpiresAt: new Date(now + this.policy.idleTtlMs),
      presentedHash: hash,
      successor: { id: randomUUID(), hash: hashRefreshToken(successor), sealedForGrace: this.box.seal(Buffer.from(successor, 'utf8'), successorAad(hash)) },
    });
    if (!row) return undefined;
    const amr = row.amr.split(' ').filter(Boolean);
    return { sessionId: row.sessionId, userId: row.userId, amr, refreshToken: successor, refreshExpiresAtMs: msOf(row.successorExpiresAt), user: toUserView(row.user) };
  }

  /**
   * The successor kept for the grace window (R4). Releases before the one-statement rotation
   * bound it to the presented token's row id; such a copy (at most one grace window old, across
   * an upgrade) still opens.
   */
  private openKeptSuccessor(sealed: Buffer, presentedHash: Buffer, rowId: string): string {
    try {
      return this.box.open(sealed, successorAad(presentedHash)).toString('utf8');
    } catch {
      return this.box.open(sealed, `refresh-successor:${rowId}`).toString('utf8');
    }
  }

  private async rotateIn(em: EntityManager, hash: Buffer, client: ClientInfo): Promise<RotateOutcome> {
    const row = await this.store.lockToken(em, hash);
    const now = this.clock.nowMs();
    if (!row || row.sessionRevokedAt || row.user.disabled) return { kind: 'invalid' };
    if (msOf(row.sessionExpiresAt) <= now) return { kind: 'invalid' };
    const amr = row.amr.split(' ').filter(Boolean);
    const user = toUserView(row.user);

    if (row.consumedAt) {
      const sinceUse = now - msOf(row.consumedAt);
      if (sinceUse <= this.policy.graceMs && row.successorTokenEnc) {
        // R4: a lost response or a second tab gets the same successor back.
        const successor = this.openKeptSuccessor(row.successorTokenEnc, hash, row.id);
        const successorExpires = await this.store.successorExpiry(em, hashRefreshToken(successor));
        return {
          kind: 'rotated',
          issued: { sessionId: row.sessionId, userId: row.userId, amr, refreshToken: successor, refreshExpiresAtMs: msOf(successorExpires), user },
        };
      }
      // R4, R8: reuse outside the grace window ends this family and its access tokens (by `sid`);
      // the user's other sessions were not exposed by this token and stay active.
      await this.endSession(em, { sessionId: row.sessionId }, 'refresh_token_reuse', now);
      enqueue(em, securityAlert({ userId: row.userId, email: row.user.email, kind: 'refresh_token_reuse', clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now }), this.clock);
      await em.flush();
      this.logger.warn({ userId: row.userId, sessionId: row.sessionId, clientIp: client.ip }, 'refresh token reuse: session family revoked');
      return { kind: 'reused', userId: row.userId, sessionId: row.sessionId, notBeforeMs: now };
    }
    if (msOf(row.expiresAt) <= now) return { kind: 'invalid' };

    const successor = newRefreshToken();
    const successorId = randomUUID();
    const expires = Math.min(now + this.policy.idleTtlMs, msOf(row.sessionExpiresAt));
    await this.store.rotate(em, {
      now: new Date(now),
      consumed: { id: row.id, parentId: row.parentId, sessionId: row.sessionId, userId: row.userId },
      successor: {
        id: successorId,
        hash: hashRefreshToken(successor),
        sealedForGrace: this.box.seal(Buffer.from(successor, 'utf8'), successorAad(hash)),
        expiresAt: new Date(expires),
      },
    });
    return { kind: 'rotated', issued: { sessionId: row.sessionId, userId: row.userId, amr, refreshToken: successor, refreshExpiresAtMs: expires, user } };
  }

  /**
   * Logout: ends the family of the presented token (consumed or not) and its access tokens (R8).
   * Unknown tokens are ignored.
   */
  async logout(token: string): Promise<void> {
    if (!looksLikeRefreshToken(token)) return;
    await this.endOne({ tokenHash: hashRefreshToken(token) }, 'logout');
  }

  /**
   * R7: ends every family of the user and voids every access token issued before now, inside the
   * caller's transaction (with the sessions_revoked event). Returns the new not-before instant;
   * the caller calls `revoked()` after commit.
   */
  async revokeAllIn(em: EntityManager, userId: string, reason: string): Promise<number> {
    const now = this.clock.nowMs();
    await this.store.revokeAllOf(em, userId, reason, new Date(now));
    await this.users.bumpTokensValidAfter(em, userId, now);
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
    const rows = await this.store.listLive(userId, now);
    return rows.map((r) => ({
      sessionId: r.id,
      createdAtMs: msOf(r.createdAt),
      lastUsedAtMs: msOf(r.lastUsedAt),
      expiresAtMs: msOf(r.expiresAt),
      userAgent: r.userAgent ?? '',
      clientIp: r.clientIp ?? '',
    }));
  }

  /**
   * Ends one of the caller's own sessions and its access tokens (R8); someone else's session id is
   * NOT_FOUND, as an unknown one.
   */
  async revokeOne(userId: string, sessionId: string): Promise<void> {
    const ended = await this.endOne({ sessionId, userId }, 'revoked_by_user');
    if (!ended) throw new LatchError('not_found', 'ERR_SESSION_NOT_FOUND', 'no such active session');
  }

  /** One session, in a transaction of its own; the hook runs after commit. */
  private async endOne(match: SessionMatch, reason: string): Promise<boolean> {
    const now = this.clock.nowMs();
    const ended = await this.orm.em.fork().transactional(async (em) => {
      const e = await this.endSession(em, match, reason, now);
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
  private async endSession(em: EntityManager, match: SessionMatch, reason: string, now: number): Promise<{ userId: string; sessionId: string } | undefined> {
    const row = await this.store.revokeOne(em, match, reason, new Date(now));
    if (!row) return undefined;
    enqueue(em, sessionsRevoked({ userId: row.userId, sessionId: row.id, notBeforeMs: now }), this.clock);
    return { userId: row.userId, sessionId: row.id };
  }
}
