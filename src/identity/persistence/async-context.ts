import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * MikroORM keeps its transaction, flush and raw-fragment context in AsyncLocalStorage. On Node 20
 * the first `run()` of any AsyncLocalStorage turns on a promise hook for the whole process, and
 * it stays on: from the first sign-in onwards every promise of every call pays for it, Introspect
 * answered from memory included (about a tenth of its throughput in `npm run bench`).
 *
 * Once installed, a storage that MikroORM (or anyone) enters with `run()` is turned off again
 * (`disable()`) as soon as no `run()` callback is unsettled anywhere in the process, so the hook is
 * on only while database work is in flight. Turning a storage off while no callback of it is
 * running changes nothing a caller can see: outside its callbacks `getStore()` is undefined anyway,
 * and the next `run()` turns it on again. Two uses would break, so their storages are never turned
 * off: `enterWith()`, and a `run()` whose callback returns something other than a promise (its
 * work may go on after it returns, and there is no telling when it ends).
 */

const released = new Set<AsyncLocalStorage<unknown>>();
const pinned = new WeakSet<AsyncLocalStorage<unknown>>();
let running = 0;
let installed = false;

function settle(): void {
  if (--running > 0) return;
  for (const storage of released) {
    if (pinned.has(storage)) released.delete(storage);
    else storage.disable();
  }
}

/** Idempotent; call it before the ORM's first query. */
export function releaseAsyncContextWhenIdle(): void {
  if (installed) return;
  installed = true;
  const proto = AsyncLocalStorage.prototype as AsyncLocalStorage<unknown> & Record<string, unknown>;
  const run = proto.run;
  const enterWith = proto.enterWith;
  proto.run = function runThenRelease<R>(this: AsyncLocalStorage<unknown>, store: unknown, callback: (...args: unknown[]) => R, ...args: unknown[]): R {
    running++;
    let result: R;
    try {
      result = run.call(this, store, callback, ...args) as R;
    } catch (err) {
      settle();
      throw err;
    }
    // Only a native promise: calling `then` on another thenable (a query builder) may start work.
    if (!(result instanceof Promise)) {
      pinned.add(this);
      settle();
      return result;
    }
    released.add(this);
    // The same settlement, once the callback's work is done; `then` keeps the value and the reason.
    return result.then(
      (value) => {
        settle();
        return value;
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    ) as R;
  };
  proto.enterWith = function enterAndPin(this: AsyncLocalStorage<unknown>, store: unknown): void {
    pinned.add(this);
    enterWith.call(this, store);
  };
}

/** For tests: whether a storage is on (its store visible), read without entering it. */
export function isEnabled(storage: AsyncLocalStorage<unknown>): boolean {
  return (storage as unknown as { enabled?: boolean }).enabled === true;
}
