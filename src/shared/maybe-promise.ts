/**
 * A value now, or a promise of it: what a lookup returns when a cache usually has the answer.
 * The hot calls (Introspect, GetCurrentUser) answer from memory; going through `async` functions
 * anyway costs each step a promise and a trip through the microtask queue. Callers that simply
 * `await` the result need no change; a sync throw and a rejection are both caught by their try.
 */
export type MaybePromise<T> = T | Promise<T>;

/** Only native promises are produced on these paths, so instanceof is exact (and cheaper than a `then` probe). */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return value instanceof Promise;
}

/** `f(value)` now when the value is here, or once it is. */
export function andThen<T, U>(value: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromise(value) ? value.then(f) : f(value);
}
