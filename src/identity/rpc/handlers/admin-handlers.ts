import type { ServiceImpl } from '@connectrpc/connect';
import { AdminService as AdminRpc } from '../../../gen/identity/v1/admin_pb.js';
import type { AdminService } from '../../admin/admin-service.js';
import { requirePrincipal } from '../pipeline/auth-policy.js';
import { clientInfo } from '../pipeline/client-info.js';
import { toUser } from './convert.js';
import { uuid } from './validate.js';

export function adminHandlers(admin: AdminService): ServiceImpl<typeof AdminRpc> {
  return {
    async listUsers(req) {
      const page = await admin.listUsers(req.pageSize, req.pageToken, req.emailPrefix);
      return { users: page.users.map(toUser), nextPageToken: page.nextPageToken };
    },
    async getUser(req) {
      return { user: toUser(await admin.getUser(uuid('user_id', req.userId))) };
    },
    async setUserDisabled(req) {
      return { user: toUser(await admin.setDisabled(uuid('user_id', req.userId), req.disabled)) };
    },
    async setUserRole(req) {
      return { user: toUser(await admin.setRole(uuid('user_id', req.userId), req.role)) };
    },
    async revokeUserSessions(req) {
      await admin.revokeSessions(uuid('user_id', req.userId));
      return {};
    },
    async requirePasswordChange(req) {
      return { user: toUser(await admin.requirePasswordChange(uuid('user_id', req.userId))) };
    },
    async resetUserSecondFactor(req, ctx) {
      const by = { userId: requirePrincipal(ctx).userId, client: clientInfo(ctx) };
      return { user: toUser(await admin.resetSecondFactor(uuid('user_id', req.userId), by)) };
    },
  };
}
