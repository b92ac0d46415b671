import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/identity/persistence/embedded/embedded-postgres.js';
import { silentLogger } from '../../src/shared/logger.js';
import { deleteStream, randomStream, waitFor } from '../events/support.js';
import { bearer, signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';
import { describeWithNats, services } from '../helpers/services.js';

const codeOf = (e: unknown) => ConnectError.from(e).code;

describe('Introspect (I1, I2)', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity();
  });
  afterAll(() => t?.stop());

  it('I1: no credential or a wrong one is UNAUTHENTICATED, never active:false', async () => {
    const { session } = await signUp(t.grpc);
    for (const opts of [{}, bearer('x'.repeat(43)), bearer(session.accessToken), { headers: { authorization: t.introspectionSecret } }]) {
      const err = await t.grpc.introspection.introspect({ token: session.accessToken }, opts).catch((e) => e);
      expect(codeOf(err)).toBe(Code.Unauthenticated);
      const viaConnect = await t.connect.introspection.introspect({ token: session.accessToken }, opts).catch((e) => e);
      expect(codeOf(viaConnect)).toBe(Code.Unauthenticated);
    }
  });

  it('I2: every bad token is inactive with no other field', async () => {
    const { session } = await signUp(t.grpc);
    const [h, p, s] = session.accessToken.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, role: 'admin' })).toString('base64url')}.${s}`;
    const hs256 = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid }).sign(new TextEncoder().encode('secret'));
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`;
    const bad = ['garbage', 'a.b.c', forged, hs256, none, session.refreshToken, `${session.accessToken}x`];
    for (const token of bad) {
      const res = await t.grpc.introspection.introspect({ token }, bearer(t.introspectionSecret));
      expect(res.active, token).toBe(false);
      expect(res.sub).toBe('');
      expect(res.email).toBe('');
      expect(res.exp).toBe(0n);
      expect(res.amr).toEqual([]);
    }
  });

  it('an empty token is INVALID_ARGUMENT with a message that names the field', async () => {
    const err = await t.grpc.introspection.introspect({ token: '' }, bearer(t.introspectionSecret)).catch((e) => e);
    expect(codeOf(err)).toBe(Code.InvalidArgument);
    expect(ConnectError.from(err).rawMessage).toContain('token');
  });

  it('a disabled account is inactive at once', async () => {
    const { session } = await signUp(t.grpc);
    expect((await t.grpc.introspection.introspect({ token: session.accessToken }, bearer(t.introspectionSecret))).active).toBe(true);
    await t.app.internals.db.orm.em.fork().execute(`update users set disabled = true where id = ?`, [session.user!.id]);
    t.app.internals.users.invalidate(session.user!.id);
    expect((await t.grpc.introspection.introspect({ token: session.accessToken }, bearer(t.introspectionSecret))).active).toBe(false);
  });
});

describe('Introspect during a PostgreSQL outage (I3)', () => {
  let pg: EmbeddedPostgres;
  let dir: string;
  let t: TestIdentity;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'latch-outage-'));
    pg = await startEmbeddedPostgres({ dataDir: dir, logger: silentLogger });
    t = await startTestIdentity({ databaseUrl: pg.url, env: { INTROSPECTION_CACHE_TTL_MS: '0' } });
  });
  afterAll(async () => {
    await t?.stop();
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is UNAVAILABLE while the database is down (never active:false), and recovers', async () => {
    const { session } = await signUp(t.grpc);
    await pg.stop();
    try {
      for (const c of [t.grpc, t.connect]) {
        const err = await c.introspection.introspect({ token: session.accessToken }, bearer(t.introspectionSecret)).catch((e) => e);
        expect(err).toBeInstanceOf(Error);
        expect(codeOf(err)).toBe(Code.Unavailable);
      }
      expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(503);
      // Bad tokens need no database and stay inactive.
      expect((await t.grpc.introspection.introspect({ token: 'garbage' }, bearer(t.introspectionSecret))).active).toBe(false);
    } finally {
      pg = await startEmbeddedPostgres({ dataDir: dir, port: pg.port, logger: silentLogger });
    }
    await waitFor(async () => (await fetch(`${t.httpUrl}/readyz`)).status === 200, 15_000, 200);
    const res = await t.grpc.introspection.introspect({ token: session.accessToken }, bearer(t.introspectionSecret));
    expect(res.active).toBe(true);
  });
});

describeWithNats('revocation across replicas (I4)', () => {
  let a: TestIdentity;
  let b: TestIdentity;
  const nats = { url: services().natsUrl ?? '', ...randomStream() };
  beforeAll(async () => {
    // Two replicas on one database and one stream; a long cache TTL shows the broadcast does the work.
    a = await startTestIdentity({ nats, env: { INTROSPECTION_CACHE_TTL_MS: '60000' } });
    b = await startTestIdentity({ nats, databaseUrl: a.databaseUrl, env: { INTROSPECTION_CACHE_TTL_MS: '60000' } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await deleteStream(nats.url, nats.streamName);
  });

  it('a LogoutAll on one replica makes the token inactive on the other within 1 s', async () => {
    const { session } = await signUp(a.grpc);
    const introspectB = () => b.grpc.introspection.introspect({ token: session.accessToken }, bearer(b.introspectionSecret));
    expect((await introspectB()).active).toBe(true); // now cached on B
    await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await a.grpc.auth.logoutAll({}, bearer(session.accessToken));
    let elapsed = Infinity;
    for (;;) {
      if (!(await introspectB()).active) {
        elapsed = performance.now() - started;
        break;
      }
      if (performance.now() - started > 5_000) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(elapsed).toBeLessThan(1_000);
  });
});
