import { LatchAuthError, type LatchPrincipal } from './principal.js';

/** What a guard demands of the verified principal. Every policy refuses `password_must_change` unless told otherwise. */
export interface LatchPolicy {
  /** The role the principal must have (e.g. "admin"). */
  role?: string;
  /** A second factor in the session: `amr` contains "otp". */
  mfa?: boolean;
  /** The user's email address has been verified. */
  verifiedEmail?: boolean;
  /** Let a principal whose password must change through (for the page that changes it). */
  allowPasswordMustChange?: boolean;
}

export const requireUser: LatchPolicy = Object.freeze({});
export const requireAdmin: LatchPolicy = Object.freeze({ role: 'admin' });
export const requireMfa: LatchPolicy = Object.freeze({ mfa: true });
export const requireVerifiedEmail: LatchPolicy = Object.freeze({ verifiedEmail: true });

/** Combines policies: every demand of each must hold. */
export function allOf(...policies: LatchPolicy[]): LatchPolicy {
  const out: LatchPolicy = {};
  for (const p of policies) {
    if (p.role !== undefined) {
      if (out.role !== undefined && out.role !== p.role) throw new Error(`conflicting roles: ${out.role} and ${p.role}`);
      out.role = p.role;
    }
    if (p.mfa) out.mfa = true;
    if (p.verifiedEmail) out.verifiedEmail = true;
  }
  out.allowPasswordMustChange = policies.length > 0 && policies.every((p) => p.allowPasswordMustChange === true);
  return out;
}

/** Throws a permission_denied LatchAuthError when the principal does not satisfy the policy. */
export function enforce(policy: LatchPolicy, p: LatchPrincipal): void {
  if (p.passwordMustChange && !policy.allowPasswordMustChange) {
    throw new LatchAuthError('permission_denied', 'password_must_change', 'the password must be changed first');
  }
  if (policy.role !== undefined && p.role !== policy.role) {
    throw new LatchAuthError('permission_denied', 'wrong_role', `the ${policy.role} role is required`);
  }
  if (policy.mfa && !p.amr.includes('otp')) {
    throw new LatchAuthError('permission_denied', 'second_factor_required', 'a session with a second factor is required');
  }
  if (policy.verifiedEmail && !p.emailVerified) {
    throw new LatchAuthError('permission_denied', 'email_not_verified', 'a verified email address is required');
  }
}
