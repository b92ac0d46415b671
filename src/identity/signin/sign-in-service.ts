import type { Clock } from '../../shared/clock.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { normalizeEmail } from '../account/email.js';
import { isHashingBusy, type PasswordAttempts } from '../account/password-attempts.js';
import type { UserStore } from '../account/user-store.js';
import { toUserView } from '../account/user-view.js';
import type { ChallengeIssued, MfaProof, MfaService } from '../mfa/mfa-service.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { SessionIssuer, SessionTokens } from './session-issuer.js';

export interface SignInDeps {
  users: UserStore;
  attempts: PasswordAttempts;
  hasher: PasswordHasher;
  mfa: MfaService;
  issuer: SessionIssuer;
  clock: Clock;
  logger: Logger;
  /** REQUIRE_VERIFIED_EMAIL: a correct password of an unverified account is no sign-in. */
  requireVerifiedEmail?: boolean;
  /** Sends the refused owner a fresh verification link (within its own limit). */
  onUnverifiedSignIn?: (userId: string) => Promise<void>;
}

/** One message for unknown email, wrong password and disabled account (P4). */
export const invalidCredentials = () =>
  new LatchError('unauthenticated', 'ERR_INVALID_CREDENTIALS', 'email or password is incorrect');

/** Said only after the correct password: the owner learns what to do, nobody else learns anything. */
export const emailNotVerified = () =>
  new LatchError(
    'failed_precondition',
    'ERR_EMAIL_NOT_VERIFIED',
    'the email address of this account is not verified: open the link in the verification email, then sign in again (a new email is sent when the last link has expired)',
  );

export type LoginResult = { kind: 'session'; session: SessionTokens } | { kind: 'mfa'; challenge: ChallengeIssued };

/** The sign-in flow: the password step, the second factor when the user has one, then a session. */
export class SignInService {
  constructor(private readonly d: SignInDeps) {}

  async login(rawEmail: string, password: string, client: ClientInfo): Promise<LoginResult> {
    const { attempts } = this.d;
    const email = normalizeEmail(rawEmail);
    attempts.checkPresented('password', password);
    // A1/A4: the attempt counts before Argon2 runs; unknown emails take the same keys (P4).
    const attempt = await attempts.throttle.begin(email, client.ip);
    const { user, ok, needsRehash } = await attempts.settleOnError(attempt, async () => {
      // One round trip: the user, its hash and whether TOTP is on.
      const found = await this.d.users.findForSignIn(email);
      if (!found) {
        // P4: unknown emails cost the same argon2 work as known ones.
        await this.d.hasher.burn(password);
        return { user: undefined, ok: false, needsRehash: false };
      }
      return { user: found, ...(await this.d.hasher.verify(found.passwordHash, password)) };
    });
    if (!user || !ok || user.disabled) {
      const outcome = await attempts.throttle.failed(attempt);
      if (user && !user.disabled) await attempts.reportLock(outcome, user.id, email, client);
      throw invalidCredentials();
    }
    await attempts.throttle.succeeded(attempt);
    if (needsRehash) await this.rehash(user, password);
    const view = toUserView(user);
    await this.assertVerified(view);
    if (view.totpEnabled) {
      // The password alone is not a sign-in: hand out a single-use challenge for CompleteMfa.
      return { kind: 'mfa', challenge: await this.d.mfa.createChallenge(undefined, user.id, ['pwd'], client) };
    }
    const session = await this.d.issuer.start(view, ['pwd'], client);
    return { kind: 'session', session };
  }

  /** The second step of an MFA sign-in (M6): a session whose amr records the second factor. */
  async completeMfa(challengeToken: string, proof: MfaProof, client: ClientInfo): Promise<SessionTokens> {
    const done = await this.d.mfa.completeChallenge(challengeToken, proof, client);
    const user = await this.d.users.findById(done.userId);
    if (!user) throw new LatchError('not_found', 'ERR_USER_NOT_FOUND', 'no such user');
    if (user.disabled) throw invalidCredentials();
    const view = toUserView(user);
    await this.assertVerified(view);
    return this.d.issuer.start(view, done.amr, client);
  }

  private async assertVerified(user: { id: string; emailVerified: boolean }): Promise<void> {
    if (!this.d.requireVerifiedEmail || user.emailVerified) return;
    try {
      await this.d.onUnverifiedSignIn?.(user.id);
    } catch (err) {
      // The refusal stands either way; the owner can ask again with the next sign-in.
      this.d.logger.warn({ err, userId: user.id }, 'could not send a new verification email after an unverified sign-in');
    }
    throw emailNotVerified();
  }

  private async rehash(user: { id: string; passwordHash: string }, password: string): Promise<void> {
    try {
      // Only if a new-password slot is free now: the sign-in does not wait behind sign-ups (A5).
      const hash = await this.d.hasher.hash(password, { wait: false });
      await this.d.users.upgradePasswordHash(user.id, user.passwordHash, hash, this.d.clock.nowMs());
      this.d.logger.info({ userId: user.id }, 'password hash upgraded to current parameters');
    } catch (err) {
      // The sign-in already succeeded; an upgrade can wait for the next one.
      if (isHashingBusy(err)) this.d.logger.debug({ userId: user.id }, 'password hash upgrade deferred: hashing busy');
      else this.d.logger.warn({ err, userId: user.id }, 'password hash upgrade failed');
    }
  }
}
