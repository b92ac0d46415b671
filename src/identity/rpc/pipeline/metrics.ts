import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A registry per process (or per test), never prom-client's global one: tests start several
 * servers in one process and must not see each other's counts. Other modules register their
 * own metrics on `registry`.
 */
export interface RpcMetrics {
  registry: Registry;
  /** Seconds per call; `code` is the Connect code name in snake case ("ok", "unauthenticated", ...). */
  rpcDuration: Histogram<'service' | 'method' | 'code' | 'transport'>;
  rpcInFlight: Gauge<'service' | 'method' | 'transport'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean; prefix?: string } = {}): RpcMetrics {
  const registry = new Registry();
  const prefix = opts.prefix ?? 'latch_';
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix });
  const rpcDuration = new Histogram({
    name: `${prefix}rpc_duration_seconds`,
    help: 'Duration of RPCs by service, method, status code and transport.',
    labelNames: ['service', 'method', 'code', 'transport'] as const,
    // Login hashing lands around 50-300 ms; introspection in the low milliseconds.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const rpcInFlight = new Gauge({
    name: `${prefix}rpc_in_flight`,
    help: 'RPCs currently being handled.',
    labelNames: ['service', 'method', 'transport'] as const,
    registers: [registry],
  });
  return { registry, rpcDuration, rpcInFlight };
}

/** The labels of one call in flight; the same object is handed to inc and dec. */
export interface CallLabels {
  service: string;
  method: string;
  transport: string;
}

export function callStarted(metrics: RpcMetrics, call: CallLabels): void {
  metrics.rpcInFlight.inc(call);
}

export function callFinished(metrics: RpcMetrics, call: CallLabels, code: string, seconds: number): void {
  metrics.rpcInFlight.dec(call);
  metrics.rpcDuration.observe({ service: call.service, method: call.method, code, transport: call.transport }, seconds);
}
