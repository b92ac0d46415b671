import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { IntrospectResponseSchema, TokenIntrospectionService, type IntrospectResponse } from '../../../gen/identity/v1/introspection_pb.js';
import { markReusable } from '../transports/reusable-response.js';
import { andThen } from '../../../shared/maybe-promise.js';
import { oncePer } from '../../../shared/once-per.js';
import type { ActiveToken, IntrospectionService } from '../../introspection/introspection-service.js';
import { MAX_TOKEN_CHARS, required } from './validate.js';

const INACTIVE = markReusable(create(IntrospectResponseSchema, { active: false }));

export function introspectionHandlers(d: { introspection: IntrospectionService; jwks(): string }): ServiceImpl<typeof TokenIntrospectionService> {
  // The service hands back the same result object while neither the token nor its user changed,
  // so the same response (and its bytes) can be reused.
  const responseOf = oncePer((r: ActiveToken) => markReusable(toResponse(r)));
  return {
    // Not async: a token and user in memory are answered without a promise (maybe-promise.ts).
    introspect(req) {
      // RFC 7662 2.2: an inactive token gets `active: false` and nothing else.
      return andThen(d.introspection.introspect(required('token', req.token, MAX_TOKEN_CHARS)), (r) => (r.active ? responseOf(r) : INACTIVE));
    },

    getJwks() {
      return { keysJson: d.jwks() };
    },
  };
}

function toResponse(r: ActiveToken): IntrospectResponse {
  return create(IntrospectResponseSchema, {
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
    emailVerified: r.emailVerified,
  });
}
