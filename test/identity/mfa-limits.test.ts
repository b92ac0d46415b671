import { ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../helpers/services.js';
import { startTestIdentity, type Clients, type TestIdentity } from '../helpers/identity.js';
import { Code, codeOf, enrollOverRpc, errorIdOf, mfaChallenge, pooled, SecurityAlertKind, securityAlerts } from './second-factor-support.js';

/**
 * A3 + A4 over the wire: wrong TOTP codes in parallel at CompleteMfa, over many challenges, get
 * exactly MFA_MAX_FAILURES_PER_USER (10) checked; the rest are RESOURCE_EXHAUSTED. With Redis the
 * attempts go to two replicas sharing the counters; without it, to one replica (counters are per
 * process). Both transports take part.
 */
const CHALLENGES = 24;
const PER_CHALLENGE = 5;

for (const mode of ['Redis, two replicas', 'in-process counters'] as const) {
  const withRedis = mode === 'Redis, two replicas';
  describe.skipIf(withRedis && !services().redisUrl)(`MFA attempt limit over RPC (${mode})`, () => {
    let a: TestIdentity;
    let b: TestIdentity;
    beforeAll(async () => {
      a = await startTestIdentity({ redis: withRedis, nats: false });
      b = withRedis ? await startTestIdentity({ databaseUrl: a.databaseUrl, nats: false }) : a;
      expect(!!a.config.REDIS_URL).toBe(withRedis);
    });
    afterAll(async () => {
      if (b !== a) await b?.stop();
      await a?.stop();
    });
    const via = (i: number): Clients => [a.grpc, b.connect, b.grpc, a.connect][i % 4]!;

    it(`${CHALLENGES * PER_CHALLENGE} parallel wrong codes over ${CHALLENGES} challenges: exactly 10 checked, MFA_LOCKED once`, async () => {
      expect(a.config.MFA_MAX_FAILURES_PER_USER).toBe(10);
      const u = await enrollOverRpc(a.grpc);
      const tokens = await pooled(Array.from({ length: CHALLENGES }), 3, (_, i) => mfaChallenge(via(i), u.email, u.password));
      const wrong = u.wrong();
      const results = await Promise.allSettled(
        tokens.flatMap((token, j) =>
          Array.from({ length: PER_CHALLENGE }, (_, k) => via(j + k).auth.completeMfa({ challengeToken: token, code: { case: 'totpCode', value: wrong } })),
        ),
      );
      const tally: Record<string, number> = {};
      for (const r of results) {
        const key = r.status === 'fulfilled' ? 'ok' : `${Code[codeOf(r.reason)]} ${errorIdOf(r.reason)}`;
        tally[key] = (tally[key] ?? 0) + 1;
      }
      expect(tally).toEqual({
        'Unauthenticated ERR_INVALID_MFA_CODE': 10,
        'ResourceExhausted ERR_TOO_MANY_MFA_ATTEMPTS': CHALLENGES * PER_CHALLENGE - 10,
      });

      // Locked for the right code too, with retry information.
      const err = await via(1)
        .auth.completeMfa({ challengeToken: await mfaChallenge(a.grpc, u.email, u.password), code: { case: 'totpCode', value: u.totp(1) } })
        .catch((e: unknown) => e);
      expect(codeOf(err)).toBe(Code.ResourceExhausted);
      expect(errorIdOf(err)).toBe('ERR_TOO_MANY_MFA_ATTEMPTS');
      expect(Number(ConnectError.from(err).metadata.get('retry-after'))).toBeGreaterThan(0);

      expect(await securityAlerts(a, u.userId)).toEqual([SecurityAlertKind.TOTP_ENABLED, SecurityAlertKind.MFA_LOCKED]);
      const logs = a.logs() + (b === a ? '' : b.logs());
      expect(logs.split('\n').filter((l) => l.includes('second factor locked'))).toHaveLength(1);
      expect(logs).not.toContain(u.password);
      for (const token of tokens) expect(logs).not.toContain(token);
    });
  });
}
