import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { LatchError } from '../../shared/errors.js';
import type { SignupThrottle } from '../abuse/signup-throttle.js';
import type { PasswordBreachCheck } from '../password/breach-check.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { PasswordPolicy } from '../password/policy.js';
import { normalizeEmail } from './email.js';
import { isHashingBusy, type PasswordAttempts } from './password-attempts.js';
import type { User } from './user.entity.js';
import type { UserStore } from './user-store.js';
import { toUserView, type UserView } from './user-view.js';

/** What else a sign-up starts (the first verification email), in the sign-up's own transaction. */
export interface RegistrationFollowUp {
  /** Runs after the user row is written, before the commit; a throw undoes the sign-up. */
  inTransaction(em: EntityManager, userId: string): Promise<void>;
  /** After the commit. */
  committed(): void;
}

export interface AccountDeps {
  orm: MikroORM;
  users: UserStore;
  attempts: PasswordAttempts;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  /** P2: runs after the policy, before hashing. */
  breaches: PasswordBreachCheck;
  signup: SignupThrottle;
  clock: Clock;
  signupEnabled: boolean;
  followUp?: RegistrationFollowUp;
}

/** Users: sign-up, reading one, and the fresh password proof sensitive changes ask for. */
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
    await this.d.breaches.assertNotBreached(password, 'password');
    let hash: string;
    try {
      hash = await this.d.hasher.hash(password);
    } catch (err) {
      // Shed before any work: the attempt was never processed, so it does not count.
      if (isHashingBusy(err)) await this.d.signup.refund(slot);
      throw err;
    }
    const newUser = { email, passwordHash: hash, role: 'user' as const, passwordMustChange: false };
    const followUp = this.d.followUp;
    if (!followUp) return toUserView(await this.d.users.insert(newUser, this.d.clock.nowMs()));
    const user = await this.d.orm.em.fork().transactional(async (em) => {
      const inserted = await this.d.users.insert(newUser, this.d.clock.nowMs(), em);
      await followUp.inTransaction(em, inserted.id);
      return inserted;
    });
    followUp.committed();
    return toUserView(user);
  }

  async getUser(userId: string): Promise<UserView> {
    const user = await this.d.users.findById(userId);
    if (!user) throw new LatchError('not_found', 'ERR_USER_NOT_FOUND', 'no such user');
    return toUserView(user);
  }

  /**
   * A fresh proof of the current password for sensitive changes (P5, DisableTotp,
   * BeginTotpEnrollment). The same reserved limits as sign-in, on the same keys: a stolen access
   * token is no way around them, and the owner on another address is not locked out (A6).
   */
  async verifyCurrentPassword(userId: string, password: string, client: ClientInfo, field = 'current_password'): Promise<User> {
    const { attempts } = this.d;
    attempts.checkPresented(field, password);
    const user = await this.d.users.findById(userId);
    if (!user || user.disabled) throw new LatchError('unauthenticated', 'ERR_INVALID_ACCESS_TOKEN', 'access token is invalid, expired or revoked');
    const attempt = await attempts.throttle.begin(user.email, client.ip);
    const verdict = await attempts.settleOnError(attempt, () => this.d.hasher.verify(user.passwordHash, password));
    if (!verdict.ok) {
      await attempts.reportLock(await attempts.throttle.failed(attempt), user.id, user.email, client);
      throw new LatchError('permission_denied', 'ERR_WRONG_PASSWORD', 'current password is incorrect');
    }
    await attempts.throttle.succeeded(attempt);
    return user;
  }
}
