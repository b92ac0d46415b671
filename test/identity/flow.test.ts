import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, startTestIdentity, TEST_PASSWORD, uniqueEmail, type Clients, type TestIdentity } from '../helpers/identity.js';

/** Done-when 2/3: the same Register → Login → GetCurrentUser → Refresh → Introspect flow on every transport. */
describe('sign-in flow on every transport', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity();
  });
  afterAll(() => t?.stop());

  const transports: [string, () => Clients][] = [
    ['gRPC (grpc-js listener)', () => t.grpc],
    ['Connect JSON over HTTP/1.1', () => t.connect],
    ['gRPC-Web over HTTP/1.1', () => t.web],
  ];

  for (const [name, clients] of transports) {
    it(name, async () => {
      const c = clients();
      const email = uniqueEmail();
      const reg = await c.auth.register({ email, password: TEST_PASSWORD });
      expect(reg.user?.email).toBe(email);
      expect(reg.user?.role).toBe('user');

      const login = await c.auth.login({ email: email.toUpperCase(), password: TEST_PASSWORD });
      if (login.result.case !== 'session') throw new Error(`expected a session, got ${login.result.case}`);
      const session = login.result.value;
      expect(session.tokenType).toBe('Bearer');

      const me = await c.auth.getCurrentUser({}, bearer(session.accessToken));
      expect(me.user?.id).toBe(reg.user?.id);

      const refreshed = await c.auth.refresh({ refreshToken: session.refreshToken });
      expect(refreshed.session?.refreshToken).not.toBe(session.refreshToken);

      const info = await c.introspection.introspect({ token: refreshed.session!.accessToken }, bearer(t.introspectionSecret));
      expect(info.active).toBe(true);
      expect(info.sub).toBe(reg.user?.id);
      expect(info.email).toBe(email);
      expect(info.amr).toEqual(['pwd']);
      expect(info.tokenType).toBe('Bearer');
    });
  }

  it('a duplicate email is ALREADY_EXISTS, whatever its case', async () => {
    const email = uniqueEmail();
    await t.grpc.auth.register({ email, password: TEST_PASSWORD });
    const err = await t.connect.auth.register({ email: email.toUpperCase(), password: TEST_PASSWORD }).catch((e) => e);
    expect(ConnectError.from(err).code).toBe(Code.AlreadyExists);
  });

  it('CORS: a preflight from an allowed origin is answered, one from another origin is not', async () => {
    const preflight = (origin: string) =>
      fetch(`${t.httpUrl}/identity.v1.AuthService/Login`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
      });
    const ok = await preflight('https://app.example.test');
    expect(ok.status).toBeLessThan(300);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
    const bad = await preflight('https://evil.example.test');
    expect(bad.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('serves JWKS, readiness and metrics on the HTTP port', async () => {
    const jwks = (await (await fetch(`${t.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys.every((k) => !('d' in k))).toBe(true);
    const viaRpc = await t.grpc.introspection.getJwks({});
    expect(JSON.parse(viaRpc.keysJson)).toEqual(jwks);
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${t.opsUrl}/metrics`)).text()).toContain('latch_');
    expect((await fetch(`${t.httpUrl}/metrics`)).status).toBe(404);
  });
});
