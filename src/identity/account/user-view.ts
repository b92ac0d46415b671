import type { Role, User } from './user.entity.js';

/** What leaves the domain about a user: never a hash or secret. */
export interface UserView {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  passwordMustChange: boolean;
  totpEnabled: boolean;
  createdAtMs: number;
}

export function toUserView(u: User, totpEnabled = false): UserView {
  return {
    id: u.id,
    email: u.email,
    role: u.role,
    disabled: u.disabled,
    passwordMustChange: u.passwordMustChange,
    totpEnabled,
    createdAtMs: u.createdAt.getTime(),
  };
}
