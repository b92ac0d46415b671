import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import { LatchError, invalidArgument } from '../../shared/errors.js';
import { UserEntity, ROLES, type Role } from '../account/user.entity.js';
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
    private readonly sessions: SessionService,
    private readonly mfa: MfaService,
    private readonly clock: Clock,
  ) {}

  async listUsers(pageSize: number, pageToken: string, emailPrefix: string): Promise<UserPage> {
    if (pageSize < 0 || pageSize > MAX_PAGE) throw invalidArgument('page_size', `must be between 0 and ${MAX_PAGE}`);
    if (emailPrefix.length > 254) throw invalidArgument('email_prefix', 'must be at most 254 characters');
    const size = pageSize || DEFAULT_PAGE;
    const after = decodePageToken(pageToken);
    const where: Record<string, unknown> = {};
    if (after) where.email = { $gt: after };
    if (emailPrefix) {
      // Emails are stored trimmed, NFC and lower-cased (account/email.ts); a prefix is compared in that form.
      const escaped = emailPrefix.trim().normalize('NFC').toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`);
      where.email = { ...(where.email as object), $like: `${escaped}%` };
    }
    const users = await this.orm.em.fork().find(UserEntity, where, { orderBy: { email: 'asc' }, limit: size + 1 });
    const page = users.slice(0, size);
    const next = users.length > size ? encodePageToken(page[page.length - 1]!.email) : '';
    const enrolled = await this.totpEnabledAmong(page.map((u) => u.id));
    return { users: page.map((u) => toUserView(u, enrolled.has(u.id))), nextPageToken: next };
  }

  async getUser(userId: string): Promise<UserView> {
    const user = await this.orm.em.fork().findOne(UserEntity, { id: userId });
    if (!user) throw notFound();
    return toUserView(user, (await this.totpEnabledAmong([user.id])).has(user.id));
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
      const found = await em.findOne(UserEntity, { id: userId });
      if (!found) throw notFound();
      removed = await this.mfa.resetIn(em, userId, found.email, admin.client);
      notBefore = await this.sessions.revokeAllIn(em, userId, 'second_factor_reset');
      await em.flush();
      return found;
    });
    this.sessions.revoked(userId, notBefore);
    await this.mfa.afterReset(userId, admin.userId, removed);
    return toUserView(user, false);
  }

  async revokeSessions(userId: string): Promise<void> {
    await this.getUser(userId);
    await this.sessions.revokeAll(userId, 'revoked_by_admin');
  }

  private async update(userId: string, patch: Partial<{ disabled: boolean; role: Role; passwordMustChange: boolean }>, revokeReason?: string): Promise<UserView> {
    let notBefore = 0;
    const view = await this.orm.em.fork().transactional(async (em) => {
      const removesAdmin = patch.role === 'user' || patch.disabled === true;
      const admins = removesAdmin ? await lockActiveAdmins(em) : [];
      const user = await em.findOne(UserEntity, { id: userId });
      if (!user) throw notFound();
      if (removesAdmin && admins.includes(userId) && admins.length === 1) throw lastAdmin();
      em.assign(user, { ...patch, updatedAt: new Date(this.clock.nowMs()) });
      if (revokeReason) notBefore = await this.sessions.revokeAllIn(em, userId, revokeReason);
      await em.flush();
      return user;
    });
    if (revokeReason) this.sessions.revoked(userId, notBefore);
    return toUserView(view, (await this.totpEnabledAmong([userId])).has(userId));
  }

  private async totpEnabledAmong(userIds: string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const rows: { user_id: string }[] = await this.orm.em
      .fork()
      .execute(
        // A JSON list: MikroORM inlines parameters and would flatten a one-element array.
        `select user_id from totp_credentials where confirmed_at is not null and user_id in (select jsonb_array_elements_text(?::jsonb)::uuid)`,
        [JSON.stringify(userIds)],
      );
    return new Set(rows.map((r) => r.user_id));
  }
}

const notFound = () => new LatchError('not_found', 'ERR_USER_NOT_FOUND', 'no such user');

const lastAdmin = () =>
  new LatchError('failed_precondition', 'ERR_LAST_ADMIN', 'this is the last active admin; make another user admin first');

/**
 * B2: the ids of the active admins, row-locked until the transaction ends. Two admins demoting
 * each other at once both queue here (in id order, so without deadlock); the second then sees
 * the first's change, since PostgreSQL re-checks the WHERE clause of a row it waited for, and
 * finds itself the last one. Locked before the target is read, so the read is current.
 */
async function lockActiveAdmins(em: EntityManager): Promise<string[]> {
  const rows: { id: string }[] = await em.execute(`select id from users where role = 'admin' and not disabled order by id for update`);
  return rows.map((r) => r.id);
}

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
