import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import { LatchError, invalidArgument } from '../../shared/errors.js';
import { ROLES, type Role } from '../account/user.entity.js';
import type { UserPatch, UserStore } from '../account/user-store.js';
import { toUserView, type UserView } from '../account/user-view.js';
import type { MfaClient, MfaService } from '../mfa/mfa-service.js';
import type { SessionService } from '../session/session-service.js';

const MAX_PAGE = 200;
const DEFAULT_PAGE = 50;

export interface UserPage {
  users: UserView[];
  nextPageToken: string;
}

/**
 * AdminService. Every change that alters what a token may do (disable, role, forced password
 * change) also ends the user's sessions, so it takes effect on every replica at once instead of
 * waiting for access tokens to expire.
 */
export class AdminService {
  constructor(
    private readonly orm: MikroORM,
    private readonly users: UserStore,
    private readonly sessions: SessionService,
    private readonly mfa: MfaService,
    private readonly clock: Clock,
  ) {}

  async listUsers(pageSize: number, pageToken: string, emailPrefix: string): Promise<UserPage> {
    if (pageSize < 0 || pageSize > MAX_PAGE) throw invalidArgument('page_size', `must be between 0 and ${MAX_PAGE}`);
    if (emailPrefix.length > 254) throw invalidArgument('email_prefix', 'must be at most 254 characters');
    const size = pageSize || DEFAULT_PAGE;
    const after = decodePageToken(pageToken);
    // Emails are stored trimmed, NFC and lower-cased (account/email.ts); a prefix is compared in that form.
    const prefix = emailPrefix ? emailPrefix.trim().normalize('NFC').toLowerCase() : undefined;
    const users = await this.users.list({ after, emailPrefix: prefix, limit: size + 1 });
    const page = users.slice(0, size);
    const next = users.length > size ? encodePageToken(page[page.length - 1]!.email) : '';
    return { users: page.map(toUserView), nextPageToken: next };
  }

  async getUser(userId: string): Promise<UserView> {
    const user = await this.users.findById(userId);
    if (!user) throw notFound();
    return toUserView(user);
  }

  async setDisabled(userId: string, disabled: boolean): Promise<UserView> {
    return this.update(userId, { disabled }, disabled ? 'disabled' : undefined);
  }

  async setRole(userId: string, role: string): Promise<UserView> {
    if (!(ROLES as readonly string[]).includes(role)) throw invalidArgument('role', `must be one of ${ROLES.join(', ')}`);
    return this.update(userId, { role: role as Role }, 'role_changed');
  }

  async requirePasswordChange(userId: string): Promise<UserView> {
    return this.update(userId, { passwordMustChange: true }, 'password_change_required');
  }

  /**
   * M7: for a user who lost the device and the backup codes. Removes TOTP and the backup codes,
   * ends every session (whoever holds them may be the reason for the reset) and alerts the user.
   * The user signs in with the password alone afterwards and may enroll again.
   */
  async resetSecondFactor(userId: string, admin: { userId: string; client: MfaClient }): Promise<UserView> {
    let notBefore = 0;
    let removed = false;
    const user = await this.orm.em.fork().transactional(async (em) => {
      const found = await this.users.findById(userId, em);
      if (!found) throw notFound();
      removed = await this.mfa.resetIn(em, userId, found.email, admin.client);
      notBefore = await this.sessions.revokeAllIn(em, userId, 'second_factor_reset');
      await em.flush();
      return found;
    });
    this.sessions.revoked(userId, notBefore);
    await this.mfa.afterReset(userId, admin.userId, removed);
    return { ...toUserView(user), totpEnabled: false };
  }

  async revokeSessions(userId: string): Promise<void> {
    await this.getUser(userId);
    await this.sessions.revokeAll(userId, 'revoked_by_admin');
  }

  private async update(userId: string, patch: UserPatch, revokeReason?: string): Promise<UserView> {
    let notBefore = 0;
    const view = await this.orm.em.fork().transactional(async (em) => {
      const removesAdmin = patch.role === 'user' || patch.disabled === true;
      const admins = removesAdmin ? await this.users.lockActiveAdmins(em) : [];
      const user = await this.users.findById(userId, em);
      if (!user) throw notFound();
      if (removesAdmin && admins.includes(userId) && admins.length === 1) throw lastAdmin();
      this.users.update(em, user, patch, this.clock.nowMs());
      if (revokeReason) notBefore = await this.sessions.revokeAllIn(em, userId, revokeReason);
      await em.flush();
      return user;
    });
    if (revokeReason) this.sessions.revoked(userId, notBefore);
    return toUserView(view);
  }
}

const notFound = () => new LatchError('not_found', 'ERR_USER_NOT_FOUND', 'no such user');

const lastAdmin = () =>
  new LatchError('failed_precondition', 'ERR_LAST_ADMIN', 'this is the last active admin; make another user admin first');

function encodePageToken(email: string): string {
  return Buffer.from(JSON.stringify({ a: email }), 'utf8').toString('base64url');
}

function decodePageToken(token: string): string | undefined {
  if (!token) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { a?: unknown };
    if (typeof parsed.a === 'string') return parsed.a;
  } catch {
    // fall through
  }
  throw invalidArgument('page_token', 'is not a token from a previous ListUsers response');
}
