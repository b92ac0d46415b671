import { afterEach, describe, expect, it } from 'vitest';
import { Code, createClient, createRouterTransport } from '@connectrpc/connect';
import { TokenIntrospectionService } from '../../../gen/identity/v1/introspection_pb.js';
import { AuthService } from '../../../gen/identity/v1/auth_pb.js';
import { authImpl, captureLogs, fakeAuth, introspectionImpl, secrets } from '../../../../test/rpc/fakes.js';
import { AccessLogSummary } from './access-log-summary.js';
import { createMetrics } from './metrics.js';
import { wrapService } from './wrap-service.js';

const INTROSPECT = 'identity.v1.TokenIntrospectionService/Introspect';
const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
const summaries: AccessLogSummary[] = [];
afterEach(() => summaries.splice(0).forEach((s) => s.stop()));

function setup(level: string, slowMs = 100_000) {
  const logs = captureLogs(level);
  const metrics = createMetrics({ defaultMetrics: false });
  const accessLog = new AccessLogSummary({ logger: logs.logger, slowMs, intervalMs: 3_600_000 });
  summaries.push(accessLog);
  const opts = { auth: fakeAuth, logger: logs.logger, metrics, trustedProxies: [], accessLog };
  const transport = createRouterTransport(({ service }) => {
    service(TokenIntrospectionService, wrapService(TokenIntrospectionService, introspectionImpl, opts));
    service(AuthService, wrapService(AuthService, authImpl, opts));
  });
  const lines = () => logs.lines().filter((l) => l.msg === 'rpc' || l.msg === 'rpc summary');
  return {
    accessLog,
    metrics,
    lines,
    introspection: createClient(TokenIntrospectionService, transport),
    auth: createClient(AuthService, transport),
  };
}

async function introspectCount(metrics: ReturnType<typeof createMetrics>, code: string): Promise<number> {
  const m = await metrics.rpcDuration.get();
  const v = m.values.find((x) => x.metricName?.endsWith('_count') && x.labels.method === 'Introspect' && x.labels.code === code);
  return v?.value ?? 0;
}

describe('access log of the busiest methods', () => {
  it('at info level: successful Introspect calls make one summary line, failures and other methods a line each; metrics count all', async () => {
    const { accessLog, metrics, lines, introspection, auth } = setup('info');
    for (let i = 0; i < 25; i++) await introspection.introspect({ token: 'good' }, bearer(secrets.callerSecret));
    await introspection.introspect({ token: 'bad-arg' }, bearer(secrets.callerSecret)).catch(() => undefined);
    await auth.login({ email: 'a@example.com', password: secrets.password });
    expect(lines().map((l) => [l.msg, l.rpc, l.code])).toEqual([
      ['rpc', INTROSPECT, 'invalid_argument'],
      ['rpc', 'identity.v1.AuthService/Login', 'ok'],
    ]);

    accessLog.flush();
    const summary = lines().filter((l) => l.msg === 'rpc summary');
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ rpc: INTROSPECT, code: 'ok', calls: 25 });
    expect(summary[0]!.p50Ms as number).toBeLessThanOrEqual(summary[0]!.p99Ms as number);
    expect(summary[0]!.p99Ms as number).toBeLessThanOrEqual(summary[0]!.maxMs as number);
    expect(await introspectCount(metrics, 'ok')).toBe(25);
    expect(await introspectCount(metrics, 'invalid_argument')).toBe(1);

    // Nothing new: no line. stop() writes what is left.
    accessLog.flush();
    await introspection.introspect({ token: 'good' }, bearer(secrets.callerSecret));
    accessLog.stop();
    expect(lines().filter((l) => l.msg === 'rpc summary').map((l) => l.calls)).toEqual([25, 1]);
  });

  it('a successful call at or over ACCESS_LOG_SLOW_MS gets its own line and is counted in the summary too', async () => {
    const { accessLog, lines, introspection } = setup('info', 50);
    await introspection.introspect({ token: 'slow' }, bearer(secrets.callerSecret)); // about 300 ms
    await introspection.introspect({ token: 'good' }, bearer(secrets.callerSecret));
    expect(lines().map((l) => [l.msg, l.rpc, l.code])).toEqual([['rpc', INTROSPECT, 'ok']]);
    expect(lines()[0]!.durationMs as number).toBeGreaterThanOrEqual(50);
    accessLog.flush();
    expect(lines().filter((l) => l.msg === 'rpc summary').map((l) => l.calls)).toEqual([2]);
  });

  it('at debug level, and with ACCESS_LOG_SLOW_MS=0, every call writes its own line', async () => {
    for (const [level, slowMs] of [['debug', 100_000], ['info', 0]] as const) {
      const { accessLog, lines, introspection, auth } = setup(level, slowMs);
      for (let i = 0; i < 3; i++) await introspection.introspect({ token: 'good' }, bearer(secrets.callerSecret));
      await auth.getCurrentUser({}, bearer(secrets.userToken));
      accessLog.flush();
      expect(lines().map((l) => [l.msg, l.code])).toEqual([...Array(4).fill(['rpc', 'ok'])]);
    }
  });

  it('a failure of a summarised method keeps its error id on its own line', async () => {
    const { lines, auth } = setup('info');
    await auth.getCurrentUser({}, bearer('nope')).catch((e) => expect(e.code).toBe(Code.Unauthenticated));
    expect(lines()).toEqual([expect.objectContaining({ msg: 'rpc', rpc: 'identity.v1.AuthService/GetCurrentUser', code: 'unauthenticated', errorId: 'ERR_INVALID_TOKEN' })]);
  });
});
