import type { Logger } from '../../shared/logger.js';

export type ShutdownSignal = 'SIGTERM' | 'SIGINT';

export interface ShutdownSignalsOptions {
  logger: Logger;
  /**
   * A repeated signal this soon after the first is the same request. A terminal's Ctrl-C reaches
   * every process in its group, and npm passes it on once more, so one keypress arrives twice.
   */
  sameRequestWindowMs?: number;
  exit?: (code: number) => never | void;
  now?: () => number;
  on?: (signal: ShutdownSignal, listener: () => void) => void;
}

export interface ShutdownSignals {
  /**
   * Hands over the graceful stop once the service runs. A signal that came during start-up is
   * acted on now: the stop begins as soon as there is something to stop.
   */
  ready(stop: () => Promise<void>): void;
}

export const SAME_REQUEST_WINDOW_MS = 1000;

/**
 * SIGTERM and SIGINT stop the service gracefully (finish in-flight calls, then close everything
 * it started); a second request, later than the window, exits at once.
 */
export function handleShutdownSignals(opts: ShutdownSignalsOptions): ShutdownSignals {
  const { logger } = opts;
  const windowMs = opts.sameRequestWindowMs ?? SAME_REQUEST_WINDOW_MS;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const now = opts.now ?? Date.now;
  const on = opts.on ?? ((signal: ShutdownSignal, listener: () => void) => void process.on(signal, listener));

  let requestedAt: number | undefined;
  let stop: (() => Promise<void>) | undefined;
  let stopping = false;

  const begin = () => {
    if (stopping || stop === undefined || requestedAt === undefined) return;
    stopping = true;
    stop().then(
      () => {
        logger.info('stopped');
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };

  const onSignal = (signal: ShutdownSignal) => {
    const at = now();
    if (requestedAt === undefined) {
      requestedAt = at;
      logger.info({ signal }, stop ? 'shutting down: finishing in-flight calls' : 'shutting down once start-up has finished');
      begin();
      return;
    }
    if (at - requestedAt < windowMs) {
      logger.debug({ signal }, 'repeated signal: already shutting down');
      return;
    }
    logger.warn({ signal }, 'second signal: exiting now');
    exit(130);
  };
  on('SIGTERM', () => onSignal('SIGTERM'));
  on('SIGINT', () => onSignal('SIGINT'));

  return {
    ready(fn) {
      stop = fn;
      begin();
    },
  };
}
