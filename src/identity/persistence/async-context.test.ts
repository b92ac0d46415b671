import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { isEnabled, releaseAsyncContextWhenIdle } from './async-context.js';

/** Resolves when `open()` is called: holds a callback unsettled for as long as a test needs. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('async context released when idle', () => {
  beforeAll(() => {
    releaseAsyncContextWhenIdle();
    releaseAsyncContextWhenIdle(); // twice is once
  });

  it('keeps the store through a callback’s awaits, then turns the storage off once it settles', async () => {
    const als = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    const value = await als.run('tx', async () => {
      seen.push(als.getStore());
      await sleep(5);
      seen.push(als.getStore());
      return 42;
    });
    expect(value).toBe(42);
    expect(seen).toEqual(['tx', 'tx']);
    expect(isEnabled(als)).toBe(false);
    expect(als.getStore()).toBeUndefined();
    // And on again for the next run.
    expect(await als.run('next', async () => als.getStore())).toBe('next');
  });

  it('while another callback is still running, no storage is turned off: each keeps its own store', async () => {
    const tx = new AsyncLocalStorage<string>();
    const flush = new AsyncLocalStorage<boolean>();
    const longer = gate();
    let seenAfterOtherEnded: [string | undefined, boolean | undefined] | undefined;
    const first = tx.run('first', async () => {
      await flush.run(true, async () => {
        await longer.wait;
        seenAfterOtherEnded = [tx.getStore(), flush.getStore()];
      });
    });
    // A second transaction starts and ends while the first is parked inside its flush.
    await tx.run('second', async () => {
      await sleep(1);
    });
    expect(isEnabled(tx)).toBe(true);
    expect(isEnabled(flush)).toBe(true);
    longer.open();
    await first;
    expect(seenAfterOtherEnded).toEqual(['first', true]);
    expect(isEnabled(tx)).toBe(false);
    expect(isEnabled(flush)).toBe(false);
  });

  it('a rejected callback passes its reason on and still releases', async () => {
    const als = new AsyncLocalStorage<string>();
    await expect(
      als.run('tx', async () => {
        await sleep(1);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(isEnabled(als)).toBe(false);
  });

  it('never turns off a storage entered with enterWith or run with a callback that is not a promise', async () => {
    const entered = new AsyncLocalStorage<string>();
    const callbackStyle = new AsyncLocalStorage<string>();
    let later: string | undefined;
    const done = gate();
    const result = callbackStyle.run('request', () => {
      // Work that outlives the callback, as in a middleware that calls next().
      setTimeout(() => {
        later = callbackStyle.getStore();
        done.open();
      }, 5);
      return 'returned';
    });
    expect(result).toBe('returned');
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        entered.enterWith('kept');
        resolve();
      }),
    );
    // Another storage's run settles: the idle point at which released storages are turned off.
    const other = new AsyncLocalStorage<string>();
    await other.run('x', async () => sleep(1));
    await done.wait;
    expect(later).toBe('request');
    expect(isEnabled(callbackStyle)).toBe(true);
    expect(isEnabled(entered)).toBe(true);
    expect(isEnabled(other)).toBe(false);
    entered.disable();
    callbackStyle.disable();
  });
});
