import { msOf } from '../persistence/row-values.js';
import type { Role } from './user.entity.js';

/** What leaves the domain about a user: never a hash or secret. */
export interface UserView {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  passwordMustChange: boolean;
  totpEnabled: boolean;
  emailVerified: boolean;
  createdAtMs: number;
}

/** The user fields a view is made of, from the entity or from a joined row named the same. */
export interface UserFields {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  passwordMustChange: boolean;
  totpEnabled?: boolean | null;
  emailVerifiedAt?: Date | string | null;
  createdAt: Date | string;
}

/** The one user -> UserView mapping. A user just inserted has no second factor yet. */
export function toUserView(u: UserFields): UserView {
  return {
    id: u.id,
    email: u.email,
    role: u.role,
    disabled: u.disabled,
    passwordMustChange: u.passwordMustChange,
    totpEnabled: u.totpEnabled === true,
    emailVerified: u.emailVerifiedAt !== null && u.emailVerifiedAt !== undefined,
    createdAtMs: msOf(u.createdAt),
  };
}
