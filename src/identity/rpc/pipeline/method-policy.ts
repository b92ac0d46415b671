import type { DescMethod, DescService } from '@bufbuild/protobuf';

/**
 * Who may call what (docs/api.md). Keyed by `${service.typeName}/${method.name}`;
 * method-policy.test.ts fails when a generated method has no entry, and an entry that is missing
 * at run time anyway falls back to 'user' so a new method is never accidentally public.
 */
export type AuthRequirement = 'none' | 'user' | 'admin' | 'caller';

export interface MethodPolicy {
  auth: AuthRequirement;
  /** Reachable by a user whose password must change first (ChangePassword, GetCurrentUser, LogoutAll). */
  allowWhilePasswordMustChange?: boolean;
}

const none: MethodPolicy = { auth: 'none' };
const user: MethodPolicy = { auth: 'user' };
const userDuringPasswordChange: MethodPolicy = { auth: 'user', allowWhilePasswordMustChange: true };
const admin: MethodPolicy = { auth: 'admin' };
const caller: MethodPolicy = { auth: 'caller' };

export const defaultPolicy: MethodPolicy = user;

export const methodPolicies: Readonly<Record<string, MethodPolicy>> = Object.freeze({
  'identity.v1.AuthService/Register': none,
  'identity.v1.AuthService/Login': none,
  'identity.v1.AuthService/CompleteMfa': none,
  'identity.v1.AuthService/Refresh': none,
  'identity.v1.AuthService/Logout': none,
  'identity.v1.AuthService/RequestPasswordReset': none,
  'identity.v1.AuthService/ResetPassword': none,
  'identity.v1.AuthService/LogoutAll': userDuringPasswordChange,
  'identity.v1.AuthService/GetCurrentUser': userDuringPasswordChange,
  'identity.v1.AuthService/ChangePassword': userDuringPasswordChange,
  'identity.v1.AuthService/BeginTotpEnrollment': user,
  'identity.v1.AuthService/ConfirmTotpEnrollment': user,
  'identity.v1.AuthService/DisableTotp': user,
  'identity.v1.AuthService/RegenerateBackupCodes': user,
  'identity.v1.AuthService/ListSessions': user,
  'identity.v1.AuthService/RevokeSession': user,
  'identity.v1.AuthService/VerifyEmail': none,
  'identity.v1.AuthService/ResendVerificationEmail': user,

  'identity.v1.TokenIntrospectionService/Introspect': caller,
  'identity.v1.TokenIntrospectionService/GetJwks': none,

  'identity.v1.AdminService/ListUsers': admin,
  'identity.v1.AdminService/GetUser': admin,
  'identity.v1.AdminService/SetUserDisabled': admin,
  'identity.v1.AdminService/SetUserRole': admin,
  'identity.v1.AdminService/RevokeUserSessions': admin,
  'identity.v1.AdminService/RequirePasswordChange': admin,
  'identity.v1.AdminService/ResetUserSecondFactor': admin,
});

export const policyKey = (service: DescService, method: DescMethod): string =>
  `${service.typeName}/${method.name}`;

export function policyFor(
  service: DescService,
  method: DescMethod,
  table: Readonly<Record<string, MethodPolicy>> = methodPolicies,
): MethodPolicy {
  return Object.hasOwn(table, policyKey(service, method)) ? table[policyKey(service, method)]! : defaultPolicy;
}
