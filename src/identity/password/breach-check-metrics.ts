import { Counter, type Registry } from 'prom-client';

export type BreachCheckOutcome = 'clean' | 'breached' | 'error_open' | 'error_closed';
export type BreachCheckSource = 'api' | 'cache';

export type BreachCheckCounter = (outcome: BreachCheckOutcome, source: BreachCheckSource) => void;

/**
 * latch_breach_check_total{outcome, source}: every check of a new password. `error_open` counts
 * passwords accepted unchecked because the range API failed (HIBP_FAILURE_MODE=open), the figure
 * an operator alerts on; `source="cache"` answers came from the prefix cache without a request.
 */
export function breachCheckCounter(registry: Registry, prefix = 'latch_'): BreachCheckCounter {
  const counter = new Counter({
    name: `${prefix}breach_check_total`,
    help: 'Breach checks of new passwords against the HIBP range API, by outcome and by where the range came from.',
    labelNames: ['outcome', 'source'] as const,
    registers: [registry],
  });
  return (outcome, source) => counter.inc({ outcome, source });
}
