import type { ServiceImpl } from '@connectrpc/connect';
import { TokenIntrospectionService } from '../../../../gen/identity/v1/introspection_pb.js';
import type { IntrospectionService } from '../../introspection/introspection-service.js';
import { MAX_TOKEN_CHARS, required } from './validate.js';

export function introspectionHandlers(d: { introspection: IntrospectionService; jwks(): string }): ServiceImpl<typeof TokenIntrospectionService> {
  return {
    async introspect(req) {
      const r = await d.introspection.introspect(required('token', req.token, MAX_TOKEN_CHARS));
      // RFC 7662 2.2: an inactive token gets `active: false` and nothing else.
      if (!r.active) return { active: false };
      return {
        active: true,
        sub: r.sub,
        email: r.email,
        role: r.role,
        scope: '',
        exp: BigInt(Math.floor(r.expMs / 1000)),
        iat: BigInt(Math.floor(r.iatMs / 1000)),
        iss: r.iss,
        aud: r.aud,
        jti: r.jti,
        tokenType: 'Bearer',
        passwordMustChange: r.passwordMustChange,
        amr: r.amr,
        clientId: r.clientId,
      };
    },

    getJwks() {
      return { keysJson: d.jwks() };
    },
  };
}
