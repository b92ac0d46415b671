import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { invalidArgument } from '../../shared/errors.js';
import type { AccountService } from '../account/account-service.js';
import type { UserStore } from '../account/user-store.js';
import { toUserView } from '../account/user-view.js';
import { enqueue } from '../events/outbox-store.js';
import { securityAlert } from '../events/security-alert.js';
import type { PasswordBreachCheck } from '../password/breach-check.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { PasswordPolicy } from '../password/policy.js';
import type { SessionService } from '../session/session-service.js';
import type { SessionIssuer, SessionTokens } from './session-issuer.js';

export interface PasswordChangeDeps {
  orm: MikroORM;
  users: UserStore;
  accounts: AccountService;
  sessions: SessionService;
  issuer: SessionIssuer;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  /** P2: runs after the policy, before hashing. */
  breaches: PasswordBreachCheck;
  clock: Clock;
}

/**
 * P5: a password change is a sign-in with the current password that ends every other session:
 * it lives here, beside the other flows that hand out sessions, so account/ needs no session/.
 */
export class PasswordChange {
  constructor(private readonly d: PasswordChangeDeps) {}

  /**
   * Needs the current password. Ends every other session (R7), clears password_must_change,
   * raises PASSWORD_CHANGED, and returns a fresh session.
   */
  async changePassword(userId: string, current: string, next: string, amr: string[], client: ClientInfo): Promise<SessionTokens> {
    const user = await this.d.accounts.verifyCurrentPassword(userId, current, client);
    this.d.policy.check(next, { email: user.email }, 'new_password');
    if (next.normalize('NFKC') === current.normalize('NFKC')) {
      throw invalidArgument('new_password', 'must differ from the current password');
    }
    await this.d.breaches.assertNotBreached(next, 'new_password');
    const hash = await this.d.hasher.hash(next);
    let notBefore = 0;
    const session = await this.d.orm.em.fork().transactional(async (em) => {
      const now = this.d.clock.nowMs();
      await this.d.users.setPassword(em, userId, hash, now);
      notBefore = await this.d.sessions.revokeAllIn(em, userId, 'password_changed');
      enqueue(em, securityAlert({ userId, email: user.email, kind: 'password_changed', clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now }), this.d.clock);
      const view = { ...toUserView(user), passwordMustChange: false };
      const refresh = await this.d.sessions.create(em, userId, amr, client);
      await em.flush();
      return { view, refresh };
    });
    this.d.sessions.revoked(userId, notBefore);
    return this.d.issuer.finish(session.view, session.refresh);
  }
}
