import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/logger.js';
import { DeferredRevocationBus, LocalRevocationBus } from './revocation-bus.js';

describe('DeferredRevocationBus', () => {
  it('R8: forwards the ended session of the bus it is attached to', () => {
    const deferred = new DeferredRevocationBus(silentLogger);
    const seen: [string, number, string | undefined][] = [];
    deferred.onRevoked((u, t, sid) => seen.push([u, t, sid]));
    expect(deferred.isLive()).toBe(false);
    const real = new LocalRevocationBus();
    deferred.attach(real);
    expect(deferred.isLive()).toBe(true);
    real.deliver('u-1', 10, 's-1');
    real.deliver('u-1', 11);
    expect(seen).toEqual([['u-1', 10, 's-1'], ['u-1', 11, undefined]]);
  });
});
