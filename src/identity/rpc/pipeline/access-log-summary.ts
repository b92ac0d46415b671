import type { Logger } from '../../../shared/logger.js';

/**
 * The access log of the methods called thousands of times a second (docs/operations.md, "Access
 * log"). A line per successful Introspect would cost more than the call itself, so their
 * successful calls are counted here and written as one `rpc summary` line per method and
 * interval. Failed calls and calls slower than ACCESS_LOG_SLOW_MS still write their own line, and
 * at LOG_LEVEL=debug every call does. The Prometheus metrics count every call either way.
 */

/** `${service}/${method}` of the methods whose successful calls are summarised. */
export const SUMMARISED_METHODS: ReadonlySet<string> = new Set([
  'identity.v1.TokenIntrospectionService/Introspect',
  'identity.v1.TokenIntrospectionService/GetJwks',
  'identity.v1.AuthService/GetCurrentUser',
]);

export const SUMMARY_INTERVAL_MS = 60_000;

/** Latencies kept per method and interval for the percentiles (a uniform sample beyond that). */
const SAMPLE_SIZE = 2048;

/** Takes one successful call's duration; true when it was counted and needs no line of its own. */
export type SummaryRecorder = (ms: number) => boolean;

export interface AccessLogSummaryOptions {
  logger: Logger;
  /** ACCESS_LOG_SLOW_MS: successful calls taking at least this long are logged one by one too; 0 logs every call. */
  slowMs: number;
  intervalMs?: number;
  methods?: ReadonlySet<string>;
}

class Window {
  calls = 0;
  maxMs = 0;
  private readonly samples = new Float64Array(SAMPLE_SIZE);

  add(ms: number): void {
    this.calls++;
    if (ms > this.maxMs) this.maxMs = ms;
    if (this.calls <= SAMPLE_SIZE) {
      this.samples[this.calls - 1] = ms;
      return;
    }
    // Reservoir sampling: every call of the interval has the same chance of being kept.
    const slot = Math.floor(Math.random() * this.calls);
    if (slot < SAMPLE_SIZE) this.samples[slot] = ms;
  }

  /** The fields of the summary line, then empty again. */
  take(): { calls: number; p50Ms: number; p99Ms: number; maxMs: number } {
    const kept = this.samples.slice(0, Math.min(this.calls, SAMPLE_SIZE)).sort();
    const at = (q: number) => round(kept[Math.min(kept.length - 1, Math.floor(q * kept.length))] ?? 0);
    const out = { calls: this.calls, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: round(this.maxMs) };
    this.calls = 0;
    this.maxMs = 0;
    return out;
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

export class AccessLogSummary {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;
  private readonly logger: Logger;
  private readonly slowMs: number;
  private readonly intervalMs: number;
  private readonly methods: ReadonlySet<string>;
  /** Read once: at debug level every call keeps its own line (tests and troubleshooting rely on it). */
  private readonly perCall: boolean;
  private started = Date.now();

  constructor(opts: AccessLogSummaryOptions) {
    this.logger = opts.logger;
    this.slowMs = opts.slowMs;
    this.intervalMs = opts.intervalMs ?? SUMMARY_INTERVAL_MS;
    this.methods = opts.methods ?? SUMMARISED_METHODS;
    this.perCall = opts.logger.isLevelEnabled('debug') || opts.slowMs <= 0;
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** The recorder for one method, or undefined when each of its calls writes its own line. */
  recorderFor(rpc: string): SummaryRecorder | undefined {
    if (this.perCall || !this.methods.has(rpc)) return undefined;
    let window = this.windows.get(rpc);
    if (window === undefined) {
      window = new Window();
      this.windows.set(rpc, window);
    }
    const w = window;
    const slowMs = this.slowMs;
    return (ms) => {
      w.add(ms);
      return ms < slowMs;
    };
  }

  /** Writes one line per method that had successful calls since the last flush. */
  flush(): void {
    const now = Date.now();
    const intervalS = Math.round((now - this.started) / 100) / 10;
    this.started = now;
    for (const [rpc, window] of this.windows) {
      if (window.calls === 0) continue;
      this.logger.info({ rpc, code: 'ok', ...window.take(), intervalS }, 'rpc summary');
    }
  }

  /** Stops the timer and writes what was counted since the last line. */
  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
