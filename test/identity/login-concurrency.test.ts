import { fromBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecurityAlertKind, SecurityAlertSchema } from '../../src/gen/identity/events/v1/events_pb.js';
import { bearer, signUp, startTestIdentity, uniqueEmail, type TestIdentity } from '../helpers/identity.js';
import { describeWithRedis } from '../helpers/services.js';

/**
 * docs/security.md A4: every sign-in limit holds under concurrency. 100 wrong passwords sent at once
 * must get exactly the limit through to the password check; the rest are refused before
 * Argon2 runs. Counted twice: by the answers (UNAUTHENTICATED / PERMISSION_DENIED = checked,
 * RESOURCE_EXHAUSTED = refused) and by the replicas' own count of Argon2 verifies.
 */

const PARALLEL = 100;
const LIMIT = 10; // LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP default
const PAIR_LOCK_LOG = 'sign-in locked for one address after repeated failures';
const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
const codeOf = (e: unknown) => ConnectError.from(e).code;

async function settle(calls: Promise<unknown>[]) {
  const answers = await Promise.allSettled(calls);
  const codes = answers.map((a) => (a.status === 'fulfilled' ? 'ok' : Code[codeOf(a.reason)]));
  const tally: Record<string, number> = {};
  for (const c of codes) tally[c!] = (tally[c!] ?? 0) + 1;
  const retry = answers.flatMap((a) => (a.status === 'rejected' && codeOf(a.reason) === Code.ResourceExhausted ? [ConnectError.from(a.reason).metadata.get('retry-after')] : []));
  return { tally, retry };
}

const verifies = (replicas: TestIdentity[]) => replicas.reduce((n, r) => n + r.app.internals.hasher.started('verify'), 0);
const countIn = (text: string, needle: string) => text.split(needle).length - 1;

async function alerts(t: TestIdentity, userId: string): Promise<SecurityAlertKind[]> {
  const rows: { payload: Buffer }[] = await t.app.internals.db.orm.em.fork().execute(`select payload from outbox where subject = 'security_alert'`);
  return rows.map((r) => fromBinary(SecurityAlertSchema, r.payload)).filter((x) => x.userId === userId).map((x) => x.kind);
}

/** The properties, run against one instance or two replicas that share Redis. */
function properties(replicas: () => TestIdentity[]) {
  const pick = (i: number) => replicas()[i % replicas().length]!;

  it(`${PARALLEL} parallel wrong passwords for one account from one address: exactly ${LIMIT} reach the check`, async () => {
    const u = await signUp(pick(0).grpc);
    const before = verifies(replicas());
    const { tally, retry } = await settle(
      Array.from({ length: PARALLEL }, (_, i) => pick(i).grpc.auth.login({ email: u.email, password: `wrong-password-number-${i}` }, from('203.0.113.7'))),
    );
    expect(tally).toEqual({ Unauthenticated: LIMIT, ResourceExhausted: PARALLEL - LIMIT });
    expect(verifies(replicas()) - before).toBe(LIMIT);
    for (const r of retry) expect(Number(r)).toBeGreaterThan(0);
    // The pair locked once; it is not the account's lock, so the owner gets no alert for it.
    expect(countIn(replicas().map((r) => r.logs()).join(''), PAIR_LOCK_LOG)).toBe(1);
    expect(await alerts(pick(0), u.session.user!.id)).toEqual([]);
    // Still locked for that address, even with the right password; the owner elsewhere signs in.
    expect(codeOf(await pick(1).grpc.auth.login({ email: u.email, password: u.password }, from('203.0.113.7')).catch((e) => e))).toBe(Code.ResourceExhausted);
    const owner = await pick(1).grpc.auth.login({ email: u.email, password: u.password }, from('198.51.100.30'));
    expect(owner.result.case).toBe('session');
  });

  it('an unknown email gets the same answers, after the same number of checks', async () => {
    const before = verifies(replicas());
    const email = uniqueEmail('ghost');
    const { tally } = await settle(
      Array.from({ length: PARALLEL }, (_, i) => pick(i).grpc.auth.login({ email, password: `wrong-password-number-${i}` }, from('203.0.113.8'))),
    );
    expect(tally).toEqual({ Unauthenticated: LIMIT, ResourceExhausted: PARALLEL - LIMIT });
    expect(verifies(replicas()) - before).toBe(LIMIT);
  });

  it(`${PARALLEL} parallel wrong current passwords (ChangePassword): exactly ${LIMIT} reach the check`, async () => {
    const u = await signUp(pick(0).grpc);
    const auth = bearer(u.session.accessToken);
    const before = verifies(replicas());
    const { tally } = await settle(
      Array.from({ length: PARALLEL }, (_, i) =>
        pick(i).grpc.auth.changePassword(
          { currentPassword: `wrong-password-number-${i}`, newPassword: 'a-brand-new-passphrase-77' },
          { headers: { ...auth.headers, ...from('203.0.113.9').headers } },
        ),
      ),
    );
    expect(tally).toEqual({ PermissionDenied: LIMIT, ResourceExhausted: PARALLEL - LIMIT });
    expect(verifies(replicas()) - before).toBe(LIMIT);
    // Sign-in from that address is locked too (same keys); the owner elsewhere is not.
    expect(codeOf(await pick(0).grpc.auth.login({ email: u.email, password: u.password }, from('203.0.113.9')).catch((e) => e))).toBe(Code.ResourceExhausted);
    await pick(1).grpc.auth.changePassword(
      { currentPassword: u.password, newPassword: 'a-brand-new-passphrase-77' },
      { headers: { ...auth.headers, ...from('198.51.100.31').headers } },
    );
  });
}

describeWithRedis('sign-in limits under concurrency, two replicas sharing Redis (A4)', () => {
  let a: TestIdentity;
  let b: TestIdentity;
  beforeAll(async () => {
    a = await startTestIdentity({ env: { TRUSTED_PROXIES: '127.0.0.1' } });
    b = await startTestIdentity({ databaseUrl: a.databaseUrl, env: { TRUSTED_PROXIES: '127.0.0.1' } });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });
  properties(() => [a, b]);
});

describe('sign-in limits under concurrency, in-process counters (A4)', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, env: { TRUSTED_PROXIES: '127.0.0.1' } });
  });
  afterAll(() => t?.stop());
  properties(() => [t]);
});

describeWithRedis('the account ceiling under concurrency (A4, A6)', () => {
  let a: TestIdentity;
  let b: TestIdentity;
  const env = { TRUSTED_PROXIES: '127.0.0.1', LOGIN_MAX_FAILURES_PER_ACCOUNT: '20' };
  beforeAll(async () => {
    a = await startTestIdentity({ env });
    b = await startTestIdentity({ databaseUrl: a.databaseUrl, env });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it(`${PARALLEL} parallel wrong passwords from ${PARALLEL} addresses: exactly the ceiling reach the check, one ACCOUNT_LOCKED`, async () => {
    const u = await signUp(a.grpc);
    const before = verifies([a, b]);
    const { tally } = await settle(
      Array.from({ length: PARALLEL }, (_, i) =>
        (i % 2 === 0 ? a : b).grpc.auth.login({ email: u.email, password: `wrong-password-number-${i}` }, from(`10.20.${i >> 8}.${i & 255}`)),
      ),
    );
    expect(tally).toEqual({ Unauthenticated: 20, ResourceExhausted: PARALLEL - 20 });
    expect(verifies([a, b]) - before).toBe(20);
    expect(await alerts(a, u.session.user!.id)).toEqual([SecurityAlertKind.ACCOUNT_LOCKED]);
    // Locked for every address now, the owner's too.
    expect(codeOf(await b.grpc.auth.login({ email: u.email, password: u.password }, from('198.51.100.40')).catch((e) => e))).toBe(Code.ResourceExhausted);
  });
});
