import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { LoginThrottle } from '../abuse/login-throttle.js';
import type { ResetThrottle } from '../abuse/reset-throttle.js';
import { normalizeEmail } from '../account/email.js';
import type { UserStore } from '../account/user-store.js';
import { passwordResetRequested } from '../events/event-messages.js';
import { enqueue } from '../events/outbox-store.js';
import { securityAlert } from '../events/security-alert.js';
import type { PasswordBreachCheck } from '../password/breach-check.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { PasswordPolicy } from '../password/policy.js';
import type { SessionService } from '../session/session-service.js';
import type { OffPathQueue } from './off-path-queue.js';
import { claimResetToken, issueResetToken, readResetToken, type ResetTokenRow } from './reset-token-store.js';
import { hashResetToken, looksLikeResetToken, newResetToken, resetLink } from './reset-token.js';

export interface PasswordResetDeps {
  orm: MikroORM;
  users: UserStore;
  sessions: SessionService;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  breaches: PasswordBreachCheck;
  limits: ResetThrottle;
  loginThrottle: LoginThrottle;
  queue: OffPathQueue;
  clock: Clock;
  logger: Logger;
  /** PASSWORD_RESET_TTL_SECONDS in ms (≤ 30 minutes). */
  ttlMs: number;
  /** PUBLIC_RESET_URL (F3): the only source of the link. */
  publicResetUrl: string;
  /** After a link's event is committed (wakes the outbox relay). */
  onEventQueued?: () => void;
}

const invalidToken = (why: string, id: string) => new LatchError('invalid_argument', id, `reset_token ${why}; request a new password reset`);

/** Password reset by a mailed link (docs/security.md F1-F4). */
export class PasswordReset {
  constructor(private readonly d: PasswordResetDeps) {}

  /**
   * Answers after the same work for every email: a malformed email is INVALID_ARGUMENT and a
   * spent address RESOURCE_EXHAUSTED, neither of which depends on an account; everything that
   * does (the per-email limit, the look-up, the token, the event) runs off the request path.
   */
  async request(rawEmail: string, client: ClientInfo): Promise<void> {
    const email = normalizeEmail(rawEmail);
    await this.d.limits.admitAddress(client.ip);
    this.d.queue.submit(() => this.issue(email));
  }

  /** The per-account part of a request; nothing here reaches the caller. */
  private async issue(email: string): Promise<void> {
    if (!(await this.d.limits.admitEmail(email))) {
      this.d.logger.info('password reset request over the per-email limit: no link sent');
      return;
    }
    const user = await this.d.users.findByEmail(email);
    if (!user || user.disabled) return;
    const token = newResetToken();
    const nowMs = this.d.clock.nowMs();
    const expiresAtMs = nowMs + this.d.ttlMs;
    const issued = await this.d.orm.em.fork().transactional(async (em) => {
      if (!(await issueResetToken(em, user.id, hashResetToken(token), new Date(nowMs), new Date(expiresAtMs)))) return false;
      enqueue(em, passwordResetRequested({ userId: user.id, email: user.email, resetUrl: resetLink(this.d.publicResetUrl, token), expiresAtMs }), this.d.clock);
      await em.flush();
      return true;
    });
    if (issued) this.d.onEventQueued?.();
  }

  /**
   * Uses the token once, sets the new password, ends every session and voids every access token,
   * raises PASSWORD_RESET and lifts the account's sign-in lock. Signs nobody in; a second factor
   * stays required at the next sign-in.
   */
  async complete(token: string, newPassword: string, client: ClientInfo): Promise<void> {
    if (!looksLikeResetToken(token)) throw invalidToken('is not valid', 'ERR_RESET_TOKEN_INVALID');
    const tokenHash = hashResetToken(token);
    const row = await readResetToken(this.d.orm.em.fork(), tokenHash);
    this.assertUsable(row);
    // Checked and hashed before the token is used, so a refused password does not burn the link.
    this.d.policy.check(newPassword, { email: row!.email }, 'new_password');
    await this.d.breaches.assertNotBreached(newPassword, 'new_password');
    const hash = await this.d.hasher.hash(newPassword);
    const notBefore = await this.d.orm.em.fork().transactional(async (em) => {
      const now = this.d.clock.nowMs();
      const userId = await claimResetToken(em, tokenHash, new Date(now));
      if (userId === null) {
        // Used, superseded or expired since the read above: explain with the state that won.
        this.assertUsable(await readResetToken(em, tokenHash));
        throw invalidToken('is not valid', 'ERR_RESET_TOKEN_INVALID');
      }
      await this.d.users.setPassword(em, userId, hash, now);
      const nb = await this.d.sessions.revokeAllIn(em, userId, 'password_reset');
      enqueue(em, securityAlert({ userId, email: row!.email, kind: 'password_reset', clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now }), this.d.clock);
      await em.flush();
      return nb;
    });
    this.d.sessions.revoked(row!.userId, notBefore);
    try {
      await this.d.loginThrottle.unlockAccount(row!.email, client.ip);
    } catch (err) {
      // The password is reset either way; the lock then ends on its own after its time.
      this.d.logger.warn({ err }, 'could not lift the sign-in lock after a password reset');
    }
  }

  private assertUsable(row: ResetTokenRow | null): void {
    if (!row || row.userDisabled) throw invalidToken('is not valid', 'ERR_RESET_TOKEN_INVALID');
    if (row.consumedAt) throw invalidToken('has already been used', 'ERR_RESET_TOKEN_USED');
    if (row.supersededAt) throw invalidToken('was replaced by a newer reset request', 'ERR_RESET_TOKEN_SUPERSEDED');
    if (row.expiresAt.getTime() <= this.d.clock.nowMs()) throw invalidToken('has expired', 'ERR_RESET_TOKEN_EXPIRED');
  }
}
