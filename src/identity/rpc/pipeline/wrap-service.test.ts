import { describe, it, expect } from 'vitest';
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  createHandlerContext,
  createRouterTransport,
} from '@connectrpc/connect';
import { AuthService } from '../../../gen/identity/v1/auth_pb.js';
import { AdminService } from '../../../gen/identity/v1/admin_pb.js';
import { TokenIntrospectionService } from '../../../gen/identity/v1/introspection_pb.js';
import { authImpl, captureLogs, fakeAuth, introspectionImpl, secrets } from '../../../../test/rpc/fakes.js';
import { peerAddressKey } from './context-keys.js';
import { createMetrics } from './metrics.js';
import { codeName } from './access-log.js';
import { wrapService, type PipelineOptions } from './wrap-service.js';
import type { Authenticator } from './auth-policy.js';
import { LatchError } from '../../../shared/errors.js';

function setup() {
  const logs = captureLogs();
  const metrics = createMetrics({ defaultMetrics: false });
  const opts: PipelineOptions = { auth: fakeAuth, logger: logs.logger, metrics, trustedProxies: ['10.0.0.0/8'] };
  const transport = createRouterTransport(({ service }) => {
    service(AuthService, wrapService(AuthService, authImpl, opts));
    service(AdminService, wrapService(AdminService, {}, opts));
    service(TokenIntrospectionService, wrapService(TokenIntrospectionService, introspectionImpl, opts));
  });
  return {
    logs,
    metrics,
    opts,
    auth: createClient(AuthService, transport),
    admin: createClient(AdminService, transport),
    introspection: createClient(TokenIntrospectionService, transport),
  };
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

async function codeOf(p: Promise<unknown>): Promise<[Code, string, string | null]> {
  try {
    await p;
  } catch (e) {
    const ce = ConnectError.from(e);
    return [ce.code, ce.rawMessage, ce.metadata.get('latch-error-id')];
  }
  throw new Error('expected the call to fail');
}

describe('pipeline auth policy', () => {
  it("lets policy 'none' through without credentials", async () => {
    const { auth } = setup();
    const res = await auth.login({ email: 'a@example.com', password: secrets.password });
    expect(res.result.case).toBe('session');
  });

  it('rejects a missing header, a wrong scheme and a bad token with UNAUTHENTICATED', async () => {
    const { auth } = setup();
    expect(await codeOf(auth.getCurrentUser({}))).toEqual([Code.Unauthenticated, 'missing authorization', 'ERR_MISSING_CREDENTIALS']);
    expect(await codeOf(auth.getCurrentUser({}, { headers: { authorization: `Basic ${secrets.userToken}` } }))).toEqual([
      Code.Unauthenticated,
      'authorization must use the Bearer scheme',
      'ERR_INVALID_AUTH_SCHEME',
    ]);
    expect(await codeOf(auth.getCurrentUser({}, { headers: { authorization: 'Bearer' } }))).toEqual([
      Code.Unauthenticated,
      'authorization must use the Bearer scheme',
      'ERR_INVALID_AUTH_SCHEME',
    ]);
    expect(await codeOf(auth.getCurrentUser({}, bearer('nope')))).toEqual([Code.Unauthenticated, 'invalid access token', 'ERR_INVALID_TOKEN']);
  });

  it('accepts the scheme name in any case and stores the principal', async () => {
    const { auth } = setup();
    const res = await auth.getCurrentUser({}, { headers: { authorization: `bearer ${secrets.userToken}` } });
    expect(res.user?.id).toBe('u-1');
  });

  it('requires the admin role for AdminService', async () => {
    const { admin } = setup();
    expect((await codeOf(admin.listUsers({}, bearer(secrets.userToken))))[0]).toBe(Code.PermissionDenied);
    expect((await codeOf(admin.listUsers({})))[0]).toBe(Code.Unauthenticated);
    // An admin passes auth and reaches the (missing) implementation.
    expect((await codeOf(admin.listUsers({}, bearer(secrets.adminToken))))[0]).toBe(Code.Unimplemented);
  });

  it('allows only the listed methods while the password must change', async () => {
    const { auth } = setup();
    expect((await auth.getCurrentUser({}, bearer(secrets.mustChangeToken))).user?.passwordMustChange).toBe(true);
    await auth.changePassword({ currentPassword: 'x', newPassword: 'y' }, bearer(secrets.mustChangeToken));
    expect(await codeOf(auth.listSessions({}, bearer(secrets.mustChangeToken)))).toEqual([
      Code.FailedPrecondition,
      'password change required',
      'ERR_PASSWORD_CHANGE_REQUIRED',
    ]);
    await auth.listSessions({}, bearer(secrets.userToken));
  });

  it("authenticates callers for policy 'caller'", async () => {
    const { introspection } = setup();
    expect((await codeOf(introspection.introspect({ token: 'good' })))[0]).toBe(Code.Unauthenticated);
    expect((await codeOf(introspection.introspect({ token: 'good' }, bearer(secrets.userToken))))[0]).toBe(Code.Unauthenticated);
    const res = await introspection.introspect({ token: 'good' }, bearer(secrets.callerSecret));
    expect(res.active).toBe(true);
    expect(res.clientId.split('|')[0]).toBe('orders-service');
    expect((await introspection.getJwks({})).keysJson).toBe('{"keys":[]}');
  });

  it('maps domain errors and hides unexpected ones', async () => {
    const { introspection } = setup();
    const h = bearer(secrets.callerSecret);
    expect(await codeOf(introspection.introspect({ token: 'bad-arg' }, h))).toEqual([Code.InvalidArgument, 'token: too long', 'ERR_INVALID_ARGUMENT']);
    const [code, msg] = await codeOf(introspection.introspect({ token: 'bug' }, h));
    expect([code, msg]).toEqual([Code.Internal, 'internal error']);
  });
});

describe('pipeline: answers from memory', () => {
  const memoryAuth: Authenticator = {
    authenticateUser: (token) => fakeAuth.authenticateUser(token),
    authenticateCaller: (secret) => {
      if (secret === secrets.callerSecret) return 'orders-service';
      throw new LatchError('unauthenticated', 'ERR_INVALID_CLIENT', 'invalid client credential');
    },
  };
  const request = (token: string) => ({ token, tokenTypeHint: '', $typeName: 'identity.v1.IntrospectRequest' as const });
  const context = (secret: string) =>
    createHandlerContext({
      service: TokenIntrospectionService,
      method: TokenIntrospectionService.method.introspect,
      protocolName: 'grpc',
      requestMethod: 'POST',
      url: '/x',
      requestHeader: { authorization: `Bearer ${secret}` },
      contextValues: createContextValues().set(peerAddressKey, 'ipv4:10.1.1.1:5000'),
    });

  it('answers without a promise when the credential and the handler need no I/O, and counts and logs the call', async () => {
    const { opts, logs, metrics } = setup();
    const impl = wrapService(TokenIntrospectionService, introspectionImpl, { ...opts, auth: memoryAuth });
    const res = impl.introspect(request('good'), context(secrets.callerSecret));
    expect(res).not.toBeInstanceOf(Promise);
    expect((res as { active: boolean }).active).toBe(true);
    // A refusal is thrown now, already mapped, and logged and counted like any other failure.
    let thrown: unknown;
    try {
      impl.introspect(request('good'), context('not-a-secret'));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConnectError);
    expect([(thrown as ConnectError).code, (thrown as ConnectError).metadata.get('latch-error-id')]).toEqual([Code.Unauthenticated, 'ERR_INVALID_CLIENT']);
    expect(() => impl.introspect(request('bug'), context(secrets.callerSecret))).toThrow(/internal error/i);
    const access = logs.lines().filter((l) => l.msg === 'rpc');
    expect(access.map((l) => l.code)).toEqual(['ok', 'unauthenticated', 'internal']);
    const text = await metrics.registry.metrics();
    for (const code of ['ok', 'unauthenticated', 'internal']) {
      expect(text).toMatch(new RegExp(`latch_rpc_duration_seconds_count\\{[^}]*method="Introspect",code="${code}",transport="grpc"\\} 1`));
    }
    // With the credential check waiting on I/O, the same call is a promise with the same answer.
    const waiting = wrapService(TokenIntrospectionService, introspectionImpl, opts).introspect(request('good'), context(secrets.callerSecret));
    expect(waiting).toBeInstanceOf(Promise);
    expect((await waiting).active).toBe(true);
  });
});

describe('pipeline client info, logs and metrics', () => {
  it('derives the client address from the peer and trusted X-Forwarded-For', async () => {
    const { opts } = setup();
    const impl = wrapService(TokenIntrospectionService, introspectionImpl, opts);
    const call = async (peer: string, xff?: string) => {
      const ctx = createHandlerContext({
        service: TokenIntrospectionService,
        method: TokenIntrospectionService.method.introspect,
        protocolName: 'grpc',
        requestMethod: 'POST',
        url: '/x',
        requestHeader: { authorization: `Bearer ${secrets.callerSecret}`, 'user-agent': 'probe/1.0', ...(xff ? { 'x-forwarded-for': xff } : {}) },
        contextValues: createContextValues().set(peerAddressKey, peer),
      });
      const res = await impl.introspect({ token: 'good', tokenTypeHint: '', $typeName: 'identity.v1.IntrospectRequest' }, ctx);
      return res.clientId;
    };
    expect(await call('ipv4:10.1.1.1:5000', '198.51.100.7')).toBe('orders-service|198.51.100.7|probe/1.0');
    expect(await call('ipv4:203.0.113.9:5000', '198.51.100.7')).toBe('orders-service|203.0.113.9|probe/1.0');
  });

  it('writes one line per call with code and duration, and never a credential or password', async () => {
    const { auth, introspection, logs, metrics } = setup();
    await auth.login({ email: 'a@example.com', password: secrets.password });
    await codeOf(auth.login({ email: 'a@example.com', password: `${secrets.password}-wrong` }));
    await auth.getCurrentUser({}, bearer(secrets.userToken));
    await codeOf(auth.getCurrentUser({}, bearer(secrets.adminToken.slice(0, 10))));
    await introspection.introspect({ token: 'good' }, bearer(secrets.callerSecret));
    await codeOf(introspection.introspect({ token: 'bug' }, bearer(secrets.callerSecret)));

    const access = logs.lines().filter((l) => l.msg === 'rpc');
    expect(access.map((l) => [l.rpc, l.code])).toEqual([
      ['identity.v1.AuthService/Login', 'ok'],
      ['identity.v1.AuthService/Login', 'unauthenticated'],
      ['identity.v1.AuthService/GetCurrentUser', 'ok'],
      ['identity.v1.AuthService/GetCurrentUser', 'unauthenticated'],
      ['identity.v1.TokenIntrospectionService/Introspect', 'ok'],
      ['identity.v1.TokenIntrospectionService/Introspect', 'internal'],
    ]);
    for (const l of access) expect(typeof l.durationMs).toBe('number');
    expect(access[2]?.userId).toBe('u-1');
    expect(access[4]?.caller).toBe('orders-service');
    const text = logs.text();
    for (const s of [...Object.values(secrets), secrets.adminToken.slice(0, 10), 'Bearer']) expect(text).not.toContain(s);
    // The unexpected error's cause is in the log (for operators), not on the wire.
    expect(text).toContain('pg: connection string');

    const out = await metrics.registry.metrics();
    expect(out).toMatch(/latch_rpc_duration_seconds_count\{service="identity.v1.AuthService",method="Login",code="unauthenticated",transport="connect"\} 1/);
    expect(out).toMatch(/latch_rpc_duration_seconds_count\{service="identity.v1.AuthService",method="Login",code="ok",transport="connect"\} 1/);
    expect(out).toMatch(/latch_rpc_in_flight\{service="identity.v1.AuthService",method="Login",transport="connect"\} 0/);
  });

  it('names codes the way the wire does', () => {
    expect(codeName(undefined)).toBe('ok');
    expect(codeName(Code.InvalidArgument)).toBe('invalid_argument');
    expect(codeName(Code.DeadlineExceeded)).toBe('deadline_exceeded');
  });
});
