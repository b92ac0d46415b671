import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { invalidArgument } from '../../../shared/errors.js';
import { oncePer } from '../../../shared/once-per.js';
import { AuthService, GetCurrentUserResponseSchema, MfaChallengeSchema, SessionInfoSchema } from '../../../gen/identity/v1/auth_pb.js';
import type { AccountService } from '../../account/account-service.js';
import type { MfaProof, MfaService } from '../../mfa/mfa-service.js';
import type { PasswordReset } from '../../recovery/password-reset.js';
import type { EmailVerification } from '../../verification/email-verification.js';
import type { PasswordChange } from '../../signin/password-change.js';
import type { SessionIssuer } from '../../signin/session-issuer.js';
import type { SignInService } from '../../signin/sign-in-service.js';
import type { SessionService } from '../../session/session-service.js';
import { requirePrincipal } from '../pipeline/auth-policy.js';
import type { Principal } from '../pipeline/context-keys.js';
import { markReusable } from '../transports/reusable-response.js';
import { clientInfo } from '../pipeline/client-info.js';
import { toSession, toUser } from './convert.js';
import { MAX_PASSWORD_CHARS, MAX_TOKEN_CHARS, required, uuid } from './validate.js';

export interface AuthHandlerDeps {
  accounts: AccountService;
  signIn: SignInService;
  passwordChange: PasswordChange;
  passwordReset: PasswordReset;
  emailVerification: EmailVerification;
  sessions: SessionService;
  issuer: SessionIssuer;
  mfa: MfaService;
  /**
   * Called after a change GetCurrentUser shows that revokes no session (TOTP on or off), so this
   * replica's user-state cache drops the user at once.
   */
  accountChanged?: (userId: string) => void;
}

const MAX_CODE_CHARS = 64;

export function authHandlers(d: AuthHandlerDeps): Partial<ServiceImpl<typeof AuthService>> {
  const currentUserOf = oncePer((p: Principal) =>
    markReusable(
      create(GetCurrentUserResponseSchema, {
        user: toUser({
          id: p.userId,
          email: p.email,
          role: p.role,
          disabled: false,
          passwordMustChange: p.passwordMustChange,
          totpEnabled: p.totpEnabled,
          emailVerified: p.emailVerified,
          createdAtMs: p.createdAtMs,
        }),
      }),
    ),
  );
  return {
    async register(req, ctx) {
      const user = await d.accounts.register(required('email', req.email, 320), required('password', req.password, MAX_PASSWORD_CHARS), clientInfo(ctx));
      return { user: toUser(user) };
    },

    async login(req, ctx) {
      const result = await d.signIn.login(
        required('email', req.email, 320),
        required('password', req.password, MAX_PASSWORD_CHARS),
        clientInfo(ctx),
      );
      if (result.kind === 'mfa') {
        const c = result.challenge;
        return {
          result: {
            case: 'mfaChallenge',
            value: create(MfaChallengeSchema, { challengeToken: c.token, expiresAt: timestampFromMs(c.expiresAtMs), methods: c.methods }),
          },
        };
      }
      return { result: { case: 'session', value: toSession(result.session) } };
    },

    async completeMfa(req, ctx) {
      const token = required('challenge_token', req.challengeToken, MAX_TOKEN_CHARS);
      let proof: MfaProof;
      if (req.code.case === 'totpCode') proof = { totpCode: required('totp_code', req.code.value, MAX_CODE_CHARS) };
      else if (req.code.case === 'backupCode') proof = { backupCode: required('backup_code', req.code.value, MAX_CODE_CHARS) };
      else throw invalidArgument('code', 'totp_code or backup_code is required');
      return { session: toSession(await d.signIn.completeMfa(token, proof, clientInfo(ctx))) };
    },

    async beginTotpEnrollment(req, ctx) {
      // M7: an access token alone must not be enough to put a second factor of one's own choosing on the account.
      const password = required('current_password', req.currentPassword, MAX_PASSWORD_CHARS);
      const user = await d.accounts.verifyCurrentPassword(requirePrincipal(ctx).userId, password, clientInfo(ctx));
      const r = await d.mfa.beginEnrollment(user.id, user.email);
      return { secret: r.secret, otpauthUri: r.otpauthUri };
    },

    async confirmTotpEnrollment(req, ctx) {
      const user = await d.accounts.getUser(requirePrincipal(ctx).userId);
      const codes = await d.mfa.confirmEnrollment(user.id, user.email, required('code', req.code, MAX_CODE_CHARS), clientInfo(ctx));
      d.accountChanged?.(user.id);
      return { backupCodes: codes };
    },

    async disableTotp(req, ctx) {
      const client = clientInfo(ctx);
      const code = required('code', req.code, MAX_CODE_CHARS);
      const user = await d.accounts.verifyCurrentPassword(requirePrincipal(ctx).userId, required('current_password', req.currentPassword, MAX_PASSWORD_CHARS), client);
      await d.mfa.disable(user.id, user.email, code, client);
      d.accountChanged?.(user.id);
      return {};
    },

    async regenerateBackupCodes(req, ctx) {
      const user = await d.accounts.getUser(requirePrincipal(ctx).userId);
      const codes = await d.mfa.regenerateBackupCodes(user.id, user.email, required('code', req.code, MAX_CODE_CHARS), clientInfo(ctx));
      return { backupCodes: codes };
    },

    async refresh(req, ctx) {
      const token = required('refresh_token', req.refreshToken, MAX_TOKEN_CHARS);
      const issued = await d.sessions.rotate(token, clientInfo(ctx));
      const user = issued.user ?? (await d.accounts.getUser(issued.userId));
      return { session: toSession(await d.issuer.finish(user, issued)) };
    },

    async logout(req) {
      await d.sessions.logout(required('refresh_token', req.refreshToken, MAX_TOKEN_CHARS));
      return {};
    },

    async logoutAll(_req, ctx) {
      await d.sessions.revokeAll(requirePrincipal(ctx).userId, 'logout_all');
      return {};
    },

    getCurrentUser(_req, ctx) {
      // Authentication already read the account through the user-state cache Introspect uses;
      // an authenticated user is never disabled (a disabled account's tokens are inactive).
      // The principal is shared by every call with the same token and unchanged user state, and so
      // is the answer built from it (encoded once on gRPC).
      return currentUserOf(requirePrincipal(ctx));
    },

    async changePassword(req, ctx) {
      const p = requirePrincipal(ctx);
      const session = await d.passwordChange.changePassword(
        p.userId,
        required('current_password', req.currentPassword, MAX_PASSWORD_CHARS),
        required('new_password', req.newPassword, MAX_PASSWORD_CHARS),
        p.amr,
        clientInfo(ctx),
      );
      return { session: toSession(session) };
    },

    async requestPasswordReset(req, ctx) {
      // The same empty answer whether or not the email has an account (docs/security.md F1).
      await d.passwordReset.request(required('email', req.email, 320), clientInfo(ctx));
      return {};
    },

    async resetPassword(req, ctx) {
      // Signs nobody in (F4): the user signs in with the new password, second factor included.
      await d.passwordReset.complete(
        required('reset_token', req.resetToken, MAX_TOKEN_CHARS),
        required('new_password', req.newPassword, MAX_PASSWORD_CHARS),
        clientInfo(ctx),
      );
      return {};
    },

    async verifyEmail(req) {
      // No authentication: the token from the mail is the credential. Signs nobody in.
      const user = await d.emailVerification.verify(required('verification_token', req.verificationToken, MAX_TOKEN_CHARS));
      return { user: toUser(user) };
    },

    async resendVerificationEmail(_req, ctx) {
      await d.emailVerification.resend(requirePrincipal(ctx).userId);
      return {};
    },

    async listSessions(_req, ctx) {
      const list = await d.sessions.list(requirePrincipal(ctx).userId);
      return {
        sessions: list.map((s) =>
          create(SessionInfoSchema, {
            sessionId: s.sessionId,
            createdAt: timestampFromMs(s.createdAtMs),
            lastUsedAt: timestampFromMs(s.lastUsedAtMs),
            expiresAt: timestampFromMs(s.expiresAtMs),
            userAgent: s.userAgent,
            clientIp: s.clientIp,
          }),
        ),
      };
    },

    async revokeSession(req, ctx) {
      await d.sessions.revokeOne(requirePrincipal(ctx).userId, uuid('session_id', req.sessionId));
      return {};
    },
  };
}
