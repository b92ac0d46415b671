import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { invalidArgument, isLatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { FailureOutcome, LoginAttempt, LoginThrottle } from '../abuse/login-throttle.js';
import { enqueue } from '../events/outbox-store.js';
import { securityAlert } from '../events/security-alert.js';

export interface PasswordAttemptsDeps {
  orm: MikroORM;
  throttle: LoginThrottle;
  clock: Clock;
  logger: Logger;
  passwordMaxBytes: number;
}

/**
 * What every check of a presented password shares, at sign-in and for a sensitive change: the
 * input bound, the throttle's bookkeeping and the owner's alert when the account locks.
 */
export class PasswordAttempts {
  constructor(private readonly d: PasswordAttemptsDeps) {}

  get throttle(): LoginThrottle {
    return this.d.throttle;
  }

  /** A password to compare (not a new one): present, and small enough to hash (A2). */
  checkPresented(field: string, password: string): void {
    if (password.length === 0) throw invalidArgument(field, 'is required');
    if (Buffer.byteLength(password, 'utf8') > this.d.passwordMaxBytes) {
      throw invalidArgument(field, `must be at most ${this.d.passwordMaxBytes} bytes`);
    }
  }

  /** Runs the password check; if it never got to an answer (hashing shed, database error), the attempt does not count. */
  async settleOnError<T>(attempt: LoginAttempt, check: () => Promise<T>): Promise<T> {
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
  async reportLock(outcome: FailureOutcome, userId: string, email: string, client: ClientInfo): Promise<void> {
    if (outcome.accountLocked) await this.alertLocked(userId, email, client);
    else if (outcome.pairLocked) this.d.logger.info({ userId, clientIp: client.ip }, 'sign-in locked for one address after repeated failures');
  }

  /** Tells the owner that repeated wrong passwords locked the account for a while. */
  private async alertLocked(userId: string, email: string, client: ClientInfo): Promise<void> {
    const now = this.d.clock.nowMs();
    await this.d.orm.em.fork().transactional(async (em) => {
      enqueue(em, securityAlert({ userId, email, kind: 'account_locked', clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: now }), this.d.clock);
    });
    this.d.logger.warn({ userId, clientIp: client.ip }, 'account locked after repeated failed sign-ins from all addresses');
  }
}

export const isHashingBusy = (err: unknown) => isLatchError(err) && err.id === 'ERR_HASHING_BUSY';
