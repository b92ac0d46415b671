import type { ServiceImpl } from '@connectrpc/connect';
import { LatchError } from '../../src/shared/errors.js';
import type { Principal } from '../../src/identity/rpc/pipeline/context-keys.js';
import { requireCaller, requirePrincipal, type Authenticator } from '../../src/identity/rpc/pipeline/auth-policy.js';
import { clientInfo } from '../../src/identity/rpc/pipeline/client-info.js';
import { AuthService } from '../../src/gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService } from '../../src/gen/identity/v1/introspection_pb.js';

/** Secrets the tests send; captured logs must contain none of them. */
export const secrets = {
  userToken: 'user-token-6a1f0c0f3b9e4d7e',
  adminToken: 'admin-token-0d3c8a51e2f74b22',
  mustChangeToken: 'pmc-token-9b77e0c4aa1d4f10',
  callerSecret: 'caller-secret-5f2d9e1b7c3a4e6f8a0b2c4d6e8f0a1b',
  password: 'correct horse battery staple 9f8e',
};

const principal = (over: Partial<Principal>): Principal => ({
  userId: 'u-1',
  role: 'user',
  sessionId: 's-1',
  passwordMustChange: false,
  amr: ['pwd'],
  email: 'ada@example.com',
  createdAtMs: 0,
  totpEnabled: false,
  emailVerified: false,
  ...over,
});

export const fakeAuth: Authenticator = {
  async authenticateUser(token) {
    if (token === secrets.userToken) return principal({});
    if (token === secrets.adminToken) return principal({ userId: 'u-admin', role: 'admin' });
    if (token === secrets.mustChangeToken) return principal({ userId: 'u-pmc', passwordMustChange: true });
    throw new LatchError('unauthenticated', 'ERR_INVALID_TOKEN', 'invalid access token');
  },
  async authenticateCaller(secret) {
    if (secret === secrets.callerSecret) return 'orders-service';
    throw new LatchError('unauthenticated', 'ERR_INVALID_CLIENT', 'invalid client credential');
  },
};

export const introspectionImpl: ServiceImpl<typeof TokenIntrospectionService> = {
  introspect(req, ctx) {
    switch (req.token) {
      case 'throttle':
        throw new LatchError('resource_exhausted', 'ERR_THROTTLED', 'too many requests', { retryAfterMs: 1500 });
      case 'bad-arg':
        throw new LatchError('invalid_argument', 'ERR_INVALID_ARGUMENT', 'token: too long', { field: 'token' });
      case 'bug':
        throw new Error('pg: connection string postgres://admin:hunter2@db failed');
      case 'slow':
        // Lets shutdown tests hold a call in flight.
        return new Promise((resolve) => setTimeout(() => resolve({ active: false }), 300));
      case 'down':
        throw new LatchError('unavailable', 'ERR_BACKEND_DOWN', 'try again later', { retryAfterMs: 250 });
      case 'until-aborted':
        // Answers only when the call's signal aborts (a client gone, a deadline passed), with its reason.
        return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    }
    ctx.responseHeader.set('x-latch-test', 'header');
    ctx.responseTrailer.set('x-latch-trailer', 'trailer');
    return {
      active: req.token === 'good',
      sub: req.token === 'good' ? 'u-42' : '',
      amr: req.token === 'good' ? ['pwd', 'otp'] : [],
      // Echo what the pipeline derived, so tests can see it through every transport.
      clientId: `${requireCaller(ctx)}|${clientInfo(ctx).ip}|${clientInfo(ctx).userAgent.split(' ')[0]}`,
    };
  },
  getJwks() {
    return { keysJson: '{"keys":[]}' };
  },
};

export const authImpl: Partial<ServiceImpl<typeof AuthService>> = {
  login(req) {
    if (req.password !== secrets.password) {
      throw new LatchError('unauthenticated', 'ERR_INVALID_CREDENTIALS', 'invalid email or password');
    }
    return { result: { case: 'session', value: { accessToken: 'at', tokenType: 'Bearer' } } };
  },
  getCurrentUser(_req, ctx) {
    const p = requirePrincipal(ctx);
    return { user: { id: p.userId, role: p.role, passwordMustChange: p.passwordMustChange } };
  },
  listSessions(_req, ctx) {
    requirePrincipal(ctx);
    return { sessions: [] };
  },
  changePassword(_req, ctx) {
    requirePrincipal(ctx);
    return {};
  },
};

/** A logger writing JSON lines into memory, for asserting on what was (not) logged. */
export { capturingLogger as captureLogs } from '../events/support.js';
