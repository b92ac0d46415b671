import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Clock } from '../../shared/clock.js';
import { LatchError, invalidArgument, isLatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { SecurityAlertKind } from '../../gen/identity/events/v1/events_pb.js';
import type { FailureOutcome, LoginAttempt, LoginThrottle } from '../abuse/login-throttle.js';
import type { SignupThrottle } from '../abuse/signup-throttle.js';
import type { ChallengeIssued, MfaProof, MfaService } from '../mfa/mfa-service.js';
import { enqueue, securityAlert } from '../events/outbox.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { PasswordPolicy } from '../password/policy.js';
import type { SessionIssuer, SessionTokens } from '../session/session-issuer.js';
import type { ClientInfo } from '../../shared/client-info.js';
import type { SessionService } from '../session/session-service.js';
import { normalizeEmail } from './email.js';
import { UserEntity, type Role, type User } from './user.entity.js';
import { toUserView, type UserView } from './user-view.js';
import { msOf } from '../persistence/row-values.js';

export interface AccountDeps {
  orm: MikroORM;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  throttle: LoginThrottle;
  signup: SignupThrottle;
  sessions: SessionService;
  issuer: SessionIssuer;
  mfa: MfaService;
  clock: Clock;
  logger: Logger;
  signupEnabled: boolean;
  passwordMaxBytes: number;
}

/** One message for unknown email, wrong password and disabled account (P4). */
export const invalidCredentials = () =>
  new LatchError('unauthenticated', 'ERR_INVALID_CREDENTIALS', 'email or password is incorrect');

export type LoginResult = { kind: 'session'; session: SessionTokens } | { kind: 'mfa'; challenge: ChallengeIssued };

export class AccountService {
  constructor(private readonly d: AccountDeps) {}

  /**
   * A5: the address's sign-up slot is reserved before the policy check and before hashing, and
   * the hash runs in the hasher's new-password lane, so a flood is refused cheaply and cannot
   * take the hashing capacity sign-in needs.
   */
  async register(rawEmail: string, password: string, client: ClientInfo): Promise<UserView> {
    if (!this.d.signupEnabled) throw new LatchError('permission_denied', 'ERR_SIGNUP_DISABLED', 'sign-up is disabled');
    const email = normalizeEmail(rawEmail);
    // Shed first while new-password hashing is saturated: it uses no sign-up place.
    this.d.hasher.assertRoomForNew();
    const slot = await this.d.signup.reserve(client.ip);
    this.d.policy.check(password, { email }, 'password');
    let hash: string;
    try {
      hash = await this.d.hasher.hash(password);
    } catch (err) {
      // Shed before any work: the attempt was never processed, so it does not count.
      if (isHashingBusy(err)) await this.d.signup.refund(slot);
      throw err;
    }
    return this.createUser(email, hash, 'user', false);
  }

  /** Inserts a user; a taken email is ALREADY_EXISTS. */
  async createUser(email: string, passwordHash: string, role: Role, passwordMustChange: boolean): Promise<UserView> {
    const now = new Date(this.d.clock.nowMs());
    const em = this.d.orm.em.fork();
    const user = em.create(UserEntity, {
      id: randomUUID(),
      email,
      passwordHash,
      role,
      disabled: false,
      passwordMustChange,
      tokensValidAfter: new Date(0),
      createdAt: now,
      updatedAt: now,
    });
    try {
      await em.persist(user).flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new LatchError('already_exists', 'ERR_EMAIL_TAKEN', 'an account with this email already exists');
      }
      throw err;
    }
    return toUserView(user);
  }

  async login(rawEmail: string, password: string, client: ClientInfo): Promise<LoginResult> {
    const email = normalizeEmail(rawEmail);
    this.checkPresented('password', password);
    // A1/A4: the attempt counts before Argon2 runs; unknown emails take the same keys (P4).
    const attempt = await this.d.throttle.begin(email, client.ip);
    const { user, ok, needsRehash } = await this.settleOnError(attempt, async () => {
      const found = await this.findForLogin(email);
      if (!found) {
        // P4: unknown emails cost the same argon2 work as known ones.
        await this.d.hasher.burn(password);
        return { user: undefined, ok: false, needsRehash: false };
      }
      return { user: found, ...(await this.d.hasher.verify(found.passwordHash, password)) };
    });
    if (!user || !ok || user.disabled) {
      const outcome = await this.d.throttle.failed(attempt);
      if (user && !user.disabled) await this.reportLock(outcome, user.id, email, client);
      throw invalidCredentials();
    }
    await this.d.throttle.succeeded(attempt);
    if (needsRehash) await this.rehash(user, password);
    if (user.view.totpEnabled) {
      // The password alone is not a sign-in: hand out a single-use challenge for CompleteMfa.
      return { kind: 'mfa', challenge: await this.d.mfa.createChallenge(undefined, user.id, ['pwd'], client) };
    }
    const session = await this.d.issuer.start(user.view, ['pwd'], client);
    return { kind: 'session', session };
  }

  /** One round trip on the sign-in path: the user, its hash and whether TOTP is on. */
  private async findForLogin(email: string): Promise<{ id: string; passwordHash: string; disabled: boolean; view: UserView } | undefined> {
    const rows: {
      id: string;
      email: string;
      password_hash: string;
      role: Role;
      disabled: boolean;
      password_must_change: boolean;
      created_at: Date | string;
      totp_enabled: boolean;
    }[] = await this.d.orm.em.fork().execute(
      `select u.id, u.email, u.password_hash, u.role, u.disabled, u.password_must_change, u.created_at,
              exists (select 1 from totp_credentials t where t.user_id = u.id and t.confirmed_at is not null) as totp_enabled
         from users u where u.email = ?`,
      [email],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: r.id,
      passwordHash: r.password_hash,
      disabled: r.disabled,
      view: {
        id: r.id,
        email: r.email,
        role: r.role,
        disabled: r.disabled,
        passwordMustChange: r.password_must_change,
        totpEnabled: r.totp_enabled,
        createdAtMs: msOf(r.created_at),
      },
    };
  }

  /** The second step of an MFA sign-in (M6): a session whose amr records the second factor. */
  async completeMfa(challengeToken: string, proof: MfaProof, client: ClientInfo): Promise<SessionTokens> {
    const done = await this.d.mfa.completeChallenge(challengeToken, proof, client);
    const user = await this.getUser(done.userId);
    if (user.disabled) throw invalidCredentials();
    return this.d.issuer.start(user, done.amr, client);
  }

  async getUser(userId: string): Promise<UserView> {
    const user = await this.d.orm.em.fork().findOne(UserEntity, { id: userId });
    if (!user) throw new LatchError('not_found', 'ERR_USER_NOT_FOUND', 'no such user');
    return toUserView(user, await this.d.mfa.isEnabled(userId));
  }

  /**
   * A fresh proof of the current password for sensitive changes (P5, DisableTotp,
   * BeginTotpEnrollment). The same reserved limits as sign-in, on the same keys: a stolen access
   * token is no way around them, and the owner on another address is not locked out (A6).
   */
  async verifyCurrentPassword(userId: string, password: string, client: ClientInfo, field = 'current_password'): Promise<User> {
    this.checkPresented(field, password);
    const user = await this.d.orm.em.fork().findOne(UserEntity, { id: userId });
    if (!user || user.disabled) throw new LatchError('unauthenticated', 'ERR_INVALID_ACCESS_TOKEN', 'access token is invalid, expired or revoked');
    const attempt = await this.d.throttle.begin(user.email, client.ip);
    const verdict = await this.settleOnError(attempt, () => this.d.hasher.verify(user.passwordHash, password));
    if (!verdict.ok) {
      await this.reportLock(await this.d.throttle.failed(attempt), user.id, user.email, client);
      throw new LatchError('permission_denied', 'ERR_WRONG_PASSWORD', 'current password is incorrect');
    }
    await this.d.throttle.succeeded(attempt);
    return user;
  }

  /** Runs the password check; if it never got to an answer (hashing shed, database error), the attempt does not count. */
  private async settleOnError<T>(attempt: LoginAttempt, check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (err) {
      await this.d.throttle.cancel(attempt).catch((e: unknown) => this.d.logger.warn({ err: e }, 'sign-in reservation could not be given back'));
      throw err;
    }
  }

  /**
   * A6: the owner is alerted when the account itself locks (the ceiling over all addresses),
   * the lock that keeps them out too. A lock of one (account, address) pair is only logged: it
   * keeps out nobody but that address, and alerting on it would let anyone with many addresses
   * send the owner an alert for every ten requests.
   */
  private async reportLock(outcome: FailureOutcome, userId: string, email: string, client: ClientInfo): Promise<void> {
    if (outcome.accountLocked) await this.alertLocked(userId, email, client);
    else if (outcome.pairLocked) this.d.logger.info({ userId, clientIp: client.ip }, 'sign-in locked for one address after repeated failures');
  }

  /**
   * P5: needs the current password. Ends every other session (R7), clears password_must_change,
   * raises PASSWORD_CHANGED, and returns a fresh session.
   */
  async changePassword(userId: string, current: string, next: string, amr: string[], client: ClientInfo): Promise<SessionTokens> {
    const user = await this.verifyCurrentPassword(userId, current, client);
    this.d.policy.check(next, { email: user.email }, 'new_password');
    if (next.normalize('NFKC') === current.normalize('NFKC')) {
      throw invalidArgument('new_password', 'must differ from the current password');
    }
    const hash = await this.d.hasher.hash(next);
    let notBefore = 0;
    const session = await this.d.orm.em.fork().transactional(async (em) => {
      const now = new Date(this.d.clock.nowMs());
      await em.execute(`update users set password_hash = ?, password_must_change = false, updated_at = ? where id = ?`, [hash, now, userId], 'run');
      notBefore = await this.d.sessions.revokeAllIn(em, userId, 'password_changed');
      enqueue(em, securityAlert({ userId, email: user.email, kind: SecurityAlertKind.PASSWORD_CHANGED, clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now.getTime() }), this.d.clock);
      const view = { ...toUserView(user, await this.d.mfa.isEnabled(userId)), passwordMustChange: false };
      const refresh = await this.d.sessions.create(em, userId, amr, client);
      await em.flush();
      return { view, refresh };
    });
    this.d.sessions.revoked(userId, notBefore);
    return this.d.issuer.finish(session.view, session.refresh);
  }

  /** A password to compare (not a new one): present, and small enough to hash (A2). */
  private checkPresented(field: string, password: string): void {
    if (password.length === 0) throw invalidArgument(field, 'is required');
    if (Buffer.byteLength(password, 'utf8') > this.d.passwordMaxBytes) {
      throw invalidArgument(field, `must be at most ${this.d.passwordMaxBytes} bytes`);
    }
  }

  /** Tells the owner that repeated wrong passwords locked the account for a while. */
  private async alertLocked(userId: string, email: string, client: ClientInfo): Promise<void> {
    const now = this.d.clock.nowMs();
    await this.d.orm.em.fork().transactional(async (em) => {
      enqueue(em, securityAlert({ userId, email, kind: SecurityAlertKind.ACCOUNT_LOCKED, clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now }), this.d.clock);
    });
    this.d.logger.warn({ userId, clientIp: client.ip }, 'account locked after repeated failed sign-ins from all addresses');
  }

  private async rehash(user: { id: string; passwordHash: string }, password: string): Promise<void> {
    try {
      // Only if a new-password slot is free now: the sign-in does not wait behind sign-ups (A5).
      const hash = await this.d.hasher.hash(password, { wait: false });
      await this.d.orm.em.fork().execute(`update users set password_hash = ?, updated_at = ? where id = ? and password_hash = ?`, [hash, new Date(this.d.clock.nowMs()), user.id, user.passwordHash], 'run');
      this.d.logger.info({ userId: user.id }, 'password hash upgraded to current parameters');
    } catch (err) {
      // The sign-in already succeeded; an upgrade can wait for the next one.
      if (isHashingBusy(err)) this.d.logger.debug({ userId: user.id }, 'password hash upgrade deferred: hashing busy');
      else this.d.logger.warn({ err, userId: user.id }, 'password hash upgrade failed');
    }
  }
}

const isHashingBusy = (err: unknown) => isLatchError(err) && err.id === 'ERR_HASHING_BUSY';
