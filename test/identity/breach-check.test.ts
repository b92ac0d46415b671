import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bearer, signUp, startTestIdentity, uniqueEmail, type Clients, type TestIdentity } from '../helpers/identity.js';
import { sha1Hex, startFakeRangeApi, type FakeRangeApi } from './breach-check-fake.js';

/**
 * docs/security.md P2 end to end: Register and ChangePassword over gRPC (grpc-js) and Connect
 * (connect-node) with HIBP_URL pointing at a local fake of the range API.
 */

const BREACHED = 'copper-lantern-drifts-8812';

const failure = async (p: Promise<unknown>) => ConnectError.from(await p.then(() => new Error('call succeeded'), (e: unknown) => e));

/** latch_breach_check_total by outcome (summed over source), as the ops port serves it. */
async function counts(t: TestIdentity): Promise<Record<string, number>> {
  const text = await (await fetch(`${t.opsUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^latch_breach_check_total\{([^}]*)\} (\d+)$/gm)) {
    const outcome = /outcome="([a-z_]+)"/.exec(m[1]!)![1]!;
    out[outcome] = (out[outcome] ?? 0) + Number(m[2]);
  }
  return out;
}

const delta = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]).filter(([, v]) => v !== 0));

describe('breach check on new passwords (P2)', () => {
  let fake: FakeRangeApi;
  let t: TestIdentity;
  beforeAll(async () => {
    fake = await startFakeRangeApi();
    fake.breach(BREACHED);
    t = await startTestIdentity({
      redis: false,
      nats: false,
      env: { HIBP_ENABLED: 'true', HIBP_URL: fake.url, HIBP_TIMEOUT_MS: '500', HIBP_FAILURE_MODE: 'closed', HIBP_CACHE_SIZE: '0' },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await fake?.stop();
  });
  beforeEach(() => {
    fake.mode = 'answer';
  });

  const transports: [string, (t: TestIdentity) => Clients][] = [
    ['gRPC', (x) => x.grpc],
    ['Connect', (x) => x.connect],
  ];

  describe.each(transports)('over %s', (_name, clientsOf) => {
    it('Register refuses a breached password with INVALID_ARGUMENT and accepts a clean one', async () => {
      const c = clientsOf(t);
      const e = await failure(c.auth.register({ email: uniqueEmail('breached'), password: BREACHED }));
      expect(e.code).toBe(Code.InvalidArgument);
      expect(e.metadata.get('latch-error-id')).toBe('ERR_PASSWORD_BREACHED');
      expect(e.rawMessage).toMatch(/data breach/);
      const email = uniqueEmail('clean');
      await c.auth.register({ email, password: 'harbour-finch-counts-7731' });
      const login = await c.auth.login({ email, password: 'harbour-finch-counts-7731' });
      expect(login.result.case).toBe('session');
    });

    it('ChangePassword refuses a breached new password and keeps the old one', async () => {
      const c = clientsOf(t);
      const u = await signUp(c);
      const e = await failure(c.auth.changePassword({ currentPassword: u.password, newPassword: BREACHED }, bearer(u.session.accessToken)));
      expect(e.code).toBe(Code.InvalidArgument);
      expect(e.metadata.get('latch-error-id')).toBe('ERR_PASSWORD_BREACHED');
      expect((await c.auth.login({ email: u.email, password: u.password })).result.case).toBe('session');
      const changed = await c.auth.changePassword({ currentPassword: u.password, newPassword: 'lilac-ferry-ascends-2290' }, bearer(u.session.accessToken));
      expect(changed.session?.accessToken).toBeTruthy();
    });

    it('with the range API down and HIBP_FAILURE_MODE=closed, answers UNAVAILABLE and creates nothing', async () => {
      const c = clientsOf(t);
      const u = await signUp(c);
      fake.mode = 'unavailable';
      const email = uniqueEmail('closed');
      const e = await failure(c.auth.register({ email, password: 'orchid-signal-travels-6604' }));
      expect(e.code).toBe(Code.Unavailable);
      expect(e.metadata.get('latch-error-id')).toBe('ERR_BREACH_CHECK_UNAVAILABLE');
      const change = await failure(c.auth.changePassword({ currentPassword: u.password, newPassword: 'orchid-signal-travels-6604' }, bearer(u.session.accessToken)));
      expect(change.metadata.get('latch-error-id')).toBe('ERR_BREACH_CHECK_UNAVAILABLE');
      fake.mode = 'answer';
      // Nothing was created: the same email registers once the API is back.
      await c.auth.register({ email, password: 'orchid-signal-travels-6604' });
    });
  });

  it('sends the range API nothing but 5-character prefixes, and counts every outcome on /metrics', async () => {
    const before = await counts(t);
    fake.requests.length = 0;
    await failure(t.grpc.auth.register({ email: uniqueEmail('m1'), password: BREACHED }));
    await t.grpc.auth.register({ email: uniqueEmail('m2'), password: 'walnut-beacon-settles-4418' });
    fake.mode = 'hang';
    await failure(t.connect.auth.register({ email: uniqueEmail('m3'), password: 'walnut-beacon-settles-4419' }));
    const after = await counts(t);
    expect(delta(before, after)).toEqual({ breached: 1, clean: 1, error_closed: 1 });
    expect(fake.requests).toHaveLength(3);
    for (const req of fake.requests) expect(req.url).toMatch(/^\/range\/[0-9A-F]{5}$/);
    const suffixes = [BREACHED, 'walnut-beacon-settles-4418', 'walnut-beacon-settles-4419'].map((p) => sha1Hex(p).slice(5));
    const sent = JSON.stringify(fake.requests).toUpperCase();
    const logged = t.logs().toUpperCase();
    for (const s of suffixes) {
      expect(sent).not.toContain(s);
      expect(logged).not.toContain(s);
    }
  });
});

describe('breach check switched off (HIBP_ENABLED=false)', () => {
  it('makes no request and accepts what the policy accepts', async () => {
    const fake = await startFakeRangeApi();
    fake.breach(BREACHED);
    const t = await startTestIdentity({ redis: false, nats: false, env: { HIBP_ENABLED: 'false', HIBP_URL: fake.url } });
    try {
      await t.grpc.auth.register({ email: uniqueEmail('off'), password: BREACHED });
      expect(fake.requests).toHaveLength(0);
      expect(t.logs()).toMatch(/HIBP_ENABLED=false/);
    } finally {
      await t.stop();
      await fake.stop();
    }
  });
});
