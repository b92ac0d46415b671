import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DurationHistogram } from './duration-histogram.js';

/**
 * A registry per process (or per test), never prom-client's global one: tests start several
 * servers in one process and must not see each other's counts. Other modules register their
 * own metrics on `registry`.
 */
export interface RpcMetrics {
  registry: Registry;
  /** Seconds per call; `code` is the Connect code name in snake case ("ok", "unauthenticated", ...). */
  rpcDuration: DurationHistogram<'service' | 'method' | 'code' | 'transport'>;
  /** Set from `inFlight` when scraped: counting in a plain object costs a call less than a labelled inc/dec. */
  rpcInFlight: Gauge<'service' | 'method' | 'transport'>;
  inFlight: Map<string, InFlightCount>;
}

interface InFlightCount {
  labels: CallLabels;
  n: number;
}

export function createMetrics(opts: { defaultMetrics?: boolean; prefix?: string } = {}): RpcMetrics {
  const registry = new Registry();
  const prefix = opts.prefix ?? 'latch_';
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix });
  const rpcDuration = new DurationHistogram(
    `${prefix}rpc_duration_seconds`,
    'Duration of RPCs by service, method, status code and transport.',
    ['service', 'method', 'code', 'transport'] as const,
    // Login hashing lands around 50-300 ms; introspection in the low milliseconds.
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry,
  );
  const inFlight = new Map<string, InFlightCount>();
  const rpcInFlight = new Gauge({
    name: `${prefix}rpc_in_flight`,
    help: 'RPCs currently being handled.',
    labelNames: ['service', 'method', 'transport'] as const,
    registers: [registry],
    collect() {
      for (const c of inFlight.values()) this.set(c.labels, c.n);
    },
  });
  return { registry, rpcDuration, rpcInFlight, inFlight };
}

/** The labels of one method on one transport. */
export interface CallLabels {
  service: string;
  method: string;
  transport: string;
}

/** The metrics of one method on one transport, labelled once and reused by every call. */
export interface CallMetrics {
  started(): void;
  finished(code: string, seconds: number): void;
}

export function callMetrics(metrics: RpcMetrics, labels: CallLabels): CallMetrics {
  const key = `${labels.service}/${labels.method}|${labels.transport}`;
  let count = metrics.inFlight.get(key);
  if (count === undefined) {
    count = { labels, n: 0 };
    metrics.inFlight.set(key, count);
  }
  const c = count;
  const byCode = new Map<string, { observe(seconds: number): void }>();
  return {
    started() {
      c.n++;
    },
    finished(code, seconds) {
      c.n--;
      let h = byCode.get(code);
      if (h === undefined) {
        h = metrics.rpcDuration.labels({ service: labels.service, method: labels.method, code, transport: labels.transport });
        byCode.set(code, h);
      }
      h.observe(seconds);
    },
  };
}
