import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/logger.js';
import { handleShutdownSignals, type ShutdownSignal } from './shutdown-signals.js';

function harness() {
  let clock = 0;
  const listeners = new Map<ShutdownSignal, () => void>();
  const exits: number[] = [];
  let stops = 0;
  let finish!: () => void;
  const signals = handleShutdownSignals({
    logger: silentLogger,
    now: () => clock,
    exit: (code) => void exits.push(code),
    on: (signal, listener) => void listeners.set(signal, listener),
  });
  const stop = () => {
    stops++;
    return new Promise<void>((resolve) => (finish = resolve));
  };
  return {
    signals,
    stop,
    send: (signal: ShutdownSignal, atMs: number) => {
      clock = atMs;
      listeners.get(signal)!();
    },
    exits,
    stops: () => stops,
    finish: async () => {
      finish();
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe('handleShutdownSignals', () => {
  it('treats the same Ctrl-C arriving twice (terminal and npm) as one request', async () => {
    const h = harness();
    h.signals.ready(h.stop);
    h.send('SIGINT', 10_000);
    h.send('SIGINT', 10_001);
    h.send('SIGTERM', 10_900);
    expect(h.stops()).toBe(1);
    expect(h.exits).toEqual([]);
    await h.finish();
    expect(h.exits).toEqual([0]);
  });

  it('exits at once on a second request after the window', () => {
    const h = harness();
    h.signals.ready(h.stop);
    h.send('SIGTERM', 10_000);
    h.send('SIGINT', 11_000);
    expect(h.exits).toEqual([130]);
  });

  it('stops as soon as start-up is over when the signal came during it', async () => {
    const h = harness();
    h.send('SIGTERM', 5_000);
    expect(h.stops()).toBe(0);
    h.signals.ready(h.stop);
    expect(h.stops()).toBe(1);
    await h.finish();
    expect(h.exits).toEqual([0]);
  });
});
