import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { SessionSchema, UserSchema, type Session, type User } from '../../../gen/identity/v1/user_pb.js';
import type { UserView } from '../../account/user-view.js';
import type { SessionTokens } from '../../signin/session-issuer.js';

export function toUser(u: UserView): User {
  return create(UserSchema, {
    id: u.id,
    email: u.email,
    role: u.role,
    totpEnabled: u.totpEnabled,
    passwordMustChange: u.passwordMustChange,
    createdAt: timestampFromMs(u.createdAtMs),
    disabled: u.disabled,
    emailVerified: u.emailVerified,
  });
}

export function toSession(s: SessionTokens): Session {
  return create(SessionSchema, {
    accessToken: s.accessToken,
    accessTokenExpiresAt: timestampFromMs(s.accessTokenExpiresAtMs),
    refreshToken: s.refreshToken,
    refreshTokenExpiresAt: timestampFromMs(s.refreshTokenExpiresAtMs),
    tokenType: 'Bearer',
    user: toUser(s.user),
  });
}
