import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DurationHistogram } from './duration-histogram.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABELS = ['service', 'method', 'code', 'transport'] as const;
// On a bucket's edge, between edges, below the first and above the last.
const OBSERVED: [Record<(typeof LABELS)[number], string>, number][] = [
  [{ service: 'identity.v1.TokenIntrospectionService', method: 'Introspect', code: 'ok', transport: 'grpc' }, 0.0004],
  [{ service: 'identity.v1.TokenIntrospectionService', method: 'Introspect', code: 'ok', transport: 'grpc' }, 0.001],
  [{ service: 'identity.v1.TokenIntrospectionService', method: 'Introspect', code: 'ok', transport: 'grpc' }, 0.0031],
  [{ service: 'identity.v1.AuthService', method: 'Login', code: 'unauthenticated', transport: 'connect' }, 0.25],
  [{ service: 'identity.v1.AuthService', method: 'Login', code: 'unauthenticated', transport: 'connect' }, 12.5],
  [{ service: 'identity.v1.AuthService', method: 'Login', code: 'ok', transport: 'grpc-web' }, 0.07],
];

describe('DurationHistogram', () => {
  it('writes the same /metrics text as prom-client’s Histogram for the same observations, and resets', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new DurationHistogram('latch_rpc_duration_seconds', 'Duration of RPCs.', LABELS, BUCKETS, ours);
    const reference = new Histogram({ name: 'latch_rpc_duration_seconds', help: 'Duration of RPCs.', labelNames: LABELS, buckets: BUCKETS, registers: [theirs] });
    for (const [labels, seconds] of OBSERVED) {
      h.labels(labels).observe(seconds);
      reference.observe(labels, seconds);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('latch_rpc_duration_seconds_count{service="identity.v1.TokenIntrospectionService",method="Introspect",code="ok",transport="grpc"} 3');
    expect(text).toContain('latch_rpc_duration_seconds_bucket{le="0.001",service="identity.v1.TokenIntrospectionService",method="Introspect",code="ok",transport="grpc"} 2');
    // What a JSON reader of the registry sees: the same series, labels and values.
    const series = async (r: Registry) =>
      (await r.getMetricsAsJSON()).map((m) => ({ name: m.name, type: m.type, values: m.values.map((v) => ({ labels: v.labels, value: v.value, metricName: (v as { metricName?: string }).metricName })) }));
    expect(await series(ours)).toEqual(await series(theirs));

    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).toContain('latch_rpc_duration_seconds_count{service="identity.v1.TokenIntrospectionService",method="Introspect",code="ok",transport="grpc"} 0');
  });

  it('keeps one series per label set', () => {
    const h = new DurationHistogram('x_seconds', 'x', LABELS, BUCKETS, new Registry());
    const a = h.labels(OBSERVED[0]![0]);
    expect(h.labels({ ...OBSERVED[0]![0] })).toBe(a);
    expect(h.labels(OBSERVED[3]![0])).not.toBe(a);
  });
});
