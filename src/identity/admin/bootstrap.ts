import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { normalizeEmail } from '../account/email.js';
import { UserStore } from '../account/user-store.js';
import { LatchError } from '../../shared/errors.js';
import type { PasswordBreachCheck } from '../password/breach-check.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { PasswordPolicy } from '../password/policy.js';

export class BootstrapError extends Error {
  override readonly name = 'BootstrapError';
}

/**
 * The breach check Register runs (docs/security.md P2), only when the password is about to become
 * an admin's: with the range API down it follows HIBP_FAILURE_MODE like every other new password.
 */
async function assertNotBreached(password: string, breaches: PasswordBreachCheck): Promise<void> {
  try {
    await breaches.assertNotBreached(password, 'ADMIN_PASSWORD');
  } catch (err) {
    if (err instanceof LatchError && err.id === 'ERR_PASSWORD_BREACHED') {
      throw new BootstrapError('ADMIN_PASSWORD rejected: this password appears in known data breaches (HIBP range API); choose another one');
    }
    if (err instanceof LatchError && err.id === 'ERR_BREACH_CHECK_UNAVAILABLE') {
      throw new BootstrapError(
        'ADMIN_PASSWORD could not be checked against known breaches: the range API (HIBP_URL) did not answer and HIBP_FAILURE_MODE=closed; start again when it answers',
      );
    }
    throw err;
  }
}

export type BootstrapOutcome = 'created' | 'admin_exists';

/**
 * B1: ADMIN_EMAIL / ADMIN_PASSWORD create an admin only when no admin exists. The password is
 * checked against the policy first (a weak one stops start-up) and, when it is about to be used,
 * against known breaches as Register does; it is never logged, and a later
 * change of the variable never overwrites anything. The new admin must change the password
 * before doing anything else.
 */
export async function bootstrapAdmin(
  orm: MikroORM,
  input: { email: string; password: string },
  deps: { hasher: PasswordHasher; policy: PasswordPolicy; breaches: PasswordBreachCheck; clock: Clock; logger: Logger },
): Promise<BootstrapOutcome> {
  let email: string;
  try {
    email = normalizeEmail(input.email, 'ADMIN_EMAIL');
    deps.policy.check(input.password, { email }, 'ADMIN_PASSWORD');
  } catch (err) {
    throw new BootstrapError(`ADMIN_EMAIL/ADMIN_PASSWORD rejected: ${(err as Error).message}`);
  }
  const users = new UserStore(orm);
  if ((await users.countAdmins()) > 0) return done('admin_exists');
  await assertNotBreached(input.password, deps.breaches);
  const hash = await deps.hasher.hash(input.password);

  const outcome = await orm.em.fork().transactional(async (em) => {
    await users.lockBootstrap(em);
    if ((await users.countAdmins(em)) > 0) return 'admin_exists' as const;
    if (await users.emailTaken(email, em)) {
      // Promoting an account someone else may have registered would hand them the admin role.
      throw new BootstrapError('ADMIN_EMAIL belongs to an existing non-admin account; choose another address or promote it with an existing admin');
    }
    // The operator vouched for ADMIN_EMAIL: it starts verified (REQUIRE_VERIFIED_EMAIL must not lock out the only admin).
    await users.insert({ email, passwordHash: hash, role: 'admin', passwordMustChange: true, emailVerified: true }, deps.clock.nowMs(), em);
    return 'created' as const;
  });
  return done(outcome);

  function done(o: BootstrapOutcome): BootstrapOutcome {
    deps.logger.info({ adminEmail: email, outcome: o }, o === 'created' ? 'bootstrap admin created; it must change its password first' : 'bootstrap admin not needed: an admin exists');
    return o;
  }
}
