import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { UserView } from '../account/user-view.js';
import type { AccessTokens } from '../token/access-token.js';
import type { ClientInfo } from '../../shared/client-info.js';
import type { IssuedRefresh, SessionService } from '../session/session-service.js';

/** What a client receives after sign-in or refresh (docs/api.md `session`). */
export interface SessionTokens {
  accessToken: string;
  accessTokenExpiresAtMs: number;
  refreshToken: string;
  refreshTokenExpiresAtMs: number;
  user: UserView;
}

/** Puts a refresh-token family and an access token together; signing stays outside transactions. */
export class SessionIssuer {
  constructor(
    private readonly orm: MikroORM,
    private readonly sessions: SessionService,
    private readonly tokens: AccessTokens,
  ) {}

  /** A new family for `user`; pass `em` to create it inside an open transaction. */
  async start(user: UserView, amr: string[], client: ClientInfo, em?: EntityManager): Promise<SessionTokens> {
    const refresh = await this.sessions.create(em ?? this.orm.em.fork(), user.id, amr, client);
    return this.finish(user, refresh);
  }

  async finish(user: UserView, refresh: IssuedRefresh): Promise<SessionTokens> {
    const access = await this.tokens.issue({
      userId: user.id,
      role: user.role,
      sessionId: refresh.sessionId,
      amr: refresh.amr,
      passwordMustChange: user.passwordMustChange,
    });
    return {
      accessToken: access.token,
      accessTokenExpiresAtMs: access.expiresAtMs,
      refreshToken: refresh.refreshToken,
      refreshTokenExpiresAtMs: refresh.refreshExpiresAtMs,
      user,
    };
  }
}
