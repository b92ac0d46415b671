import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { VerificationThrottle } from '../abuse/verification-throttle.js';
import type { UserStore } from '../account/user-store.js';
import { toUserView, type UserView } from '../account/user-view.js';
import { emailVerificationRequested } from '../events/event-messages.js';
import { enqueue } from '../events/outbox-store.js';
import {
  claimVerificationToken,
  hasLiveVerificationToken,
  issueVerificationToken,
  readVerificationToken,
  type VerificationTokenRow,
} from './verification-token-store.js';
import { hashVerificationToken, looksLikeVerificationToken, newVerificationToken, verificationLink } from './verification-token.js';

export interface EmailVerificationDeps {
  orm: MikroORM;
  users: UserStore;
  limits: VerificationThrottle;
  clock: Clock;
  logger: Logger;
  /** EMAIL_VERIFICATION_TTL_SECONDS in ms. */
  ttlMs: number;
  /** PUBLIC_VERIFY_EMAIL_URL: the only source of the link. */
  publicVerifyEmailUrl: string;
  /** After a link's event is committed (wakes the outbox relay). */
  onEventQueued?: () => void;
  /** After an address was verified: the user's cached state (Introspect, GetCurrentUser) is stale. */
  onVerified?: (userId: string) => void;
}

const invalidToken = (why: string, id: string) =>
  new LatchError('invalid_argument', id, `verification_token ${why}; sign in and request a new verification email`, { field: 'verification_token' });

const alreadyVerified = () => new LatchError('failed_precondition', 'ERR_EMAIL_ALREADY_VERIFIED', 'the email address is already verified');

/** Email verification by a mailed link (docs/security.md V1). */
export class EmailVerification {
  constructor(private readonly d: EmailVerificationDeps) {}

  /**
   * Issues the first link inside the Register transaction: the account, its token and the event
   * commit together or not at all. Call `queued()` once the transaction committed.
   */
  async issueInTransaction(em: EntityManager, userId: string): Promise<void> {
    await this.issue(em, userId);
  }

  /** Wakes the outbox relay for an event committed by issueInTransaction. */
  queued(): void {
    this.d.onEventQueued?.();
  }

  /**
   * A new link for a signed-in user (ResendVerificationEmail): the previous links stop working.
   * FAILED_PRECONDITION once verified; RESOURCE_EXHAUSTED past the per-user limit.
   */
  async resend(userId: string): Promise<void> {
    const user = await this.d.users.findById(userId);
    if (!user || user.disabled) throw new LatchError('unauthenticated', 'ERR_INVALID_ACCESS_TOKEN', 'access token is invalid, expired or revoked');
    if (user.emailVerifiedAt) throw alreadyVerified();
    await this.d.limits.admit(userId);
    const outcome = await this.d.orm.em.fork().transactional((em) => this.issue(em, userId));
    if (outcome === 'issued') {
      this.queued();
      return;
    }
    // Verified or disabled since the read above: nothing was sent, so nothing counts.
    await this.d.limits.refund(userId);
    if (outcome === 'verified') throw alreadyVerified();
    throw new LatchError('unauthenticated', 'ERR_INVALID_ACCESS_TOKEN', 'access token is invalid, expired or revoked');
  }

  /**
   * A new link for an account whose sign-in was refused as unverified (REQUIRE_VERIFIED_EMAIL),
   * so its owner is not stuck with an expired one (without a sign-in there is no Resend). Sent
   * only when no link of the account still works, so the mail already in the inbox stays valid;
   * within the same per-user limit as resend; past it, nothing is sent and the answer is the same.
   */
  async resendAfterRefusedSignIn(userId: string): Promise<void> {
    if (await hasLiveVerificationToken(this.d.orm.em.fork(), userId, new Date(this.d.clock.nowMs()))) return;
    try {
      await this.resend(userId);
    } catch (err) {
      if (err instanceof LatchError && err.kind === 'resource_exhausted') {
        this.d.logger.info({ userId }, 'unverified sign-in over the verification email limit: no new link sent');
        return;
      }
      throw err;
    }
  }

  /**
   * Uses the token once and marks the account's address verified. A token is refused when it is
   * malformed, unknown, used, replaced by a newer one, expired, when its account is disabled or
   * when the account's address is no longer the one the token was mailed to.
   */
  async verify(token: string): Promise<UserView> {
    if (!looksLikeVerificationToken(token)) throw invalidToken('is not valid', 'ERR_VERIFICATION_TOKEN_INVALID');
    const tokenHash = hashVerificationToken(token);
    const user = await this.d.orm.em.fork().transactional(async (em) => {
      const now = this.d.clock.nowMs();
      const userId = await claimVerificationToken(em, tokenHash, new Date(now));
      if (userId === null) {
        // Explain with the state that made the claim fail.
        this.assertUsable(await readVerificationToken(em, tokenHash), now);
        throw invalidToken('is not valid', 'ERR_VERIFICATION_TOKEN_INVALID');
      }
      await this.d.users.markEmailVerified(em, userId, now);
      const found = await this.d.users.findById(userId, em);
      if (!found) throw invalidToken('is not valid', 'ERR_VERIFICATION_TOKEN_INVALID');
      return found;
    });
    this.d.onVerified?.(user.id);
    return toUserView(user);
  }

  private async issue(em: EntityManager, userId: string): Promise<'issued' | 'verified' | 'unavailable'> {
    const token = newVerificationToken();
    const nowMs = this.d.clock.nowMs();
    const expiresAtMs = nowMs + this.d.ttlMs;
    const target = await issueVerificationToken(em, userId, hashVerificationToken(token), new Date(nowMs), new Date(expiresAtMs));
    if (!target || target.disabled) return 'unavailable';
    if (target.verified) return 'verified';
    enqueue(
      em,
      emailVerificationRequested({ userId, email: target.email, verifyUrl: verificationLink(this.d.publicVerifyEmailUrl, token), expiresAtMs }),
      this.d.clock,
    );
    await em.flush();
    return 'issued';
  }

  private assertUsable(row: VerificationTokenRow | null, nowMs: number): void {
    if (!row || row.userDisabled) throw invalidToken('is not valid', 'ERR_VERIFICATION_TOKEN_INVALID');
    if (row.consumedAt) throw invalidToken('has already been used', 'ERR_VERIFICATION_TOKEN_USED');
    if (row.supersededAt) throw invalidToken('was replaced by a newer verification email', 'ERR_VERIFICATION_TOKEN_SUPERSEDED');
    if (row.expiresAt.getTime() <= nowMs) throw invalidToken('has expired', 'ERR_VERIFICATION_TOKEN_EXPIRED');
    if (row.email.toLowerCase() !== row.userEmail.toLowerCase()) {
      throw invalidToken('was sent to an address the account no longer has', 'ERR_VERIFICATION_TOKEN_EMAIL_CHANGED');
    }
  }
}
