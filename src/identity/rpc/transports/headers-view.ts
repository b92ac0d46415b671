/**
 * A transport's request headers seen as fetch Headers, which is how a HandlerContext presents them.
 * The pipeline reads a few headers by name on every call (authorization, user-agent,
 * x-forwarded-for); a view answers those from the transport's own structure. Anything else
 * (iteration, odd names, a write) works on a full Headers copy made on first use, which answers
 * every later call too.
 */
export abstract class HeadersView implements Headers {
  private copy: Headers | undefined;

  /** The value Headers.get would give for `name` (lower-case, a plain token); null when absent. */
  protected abstract lookup(name: string): string | null;

  /** The full Headers copy the transport's headers convert to. */
  protected abstract build(): Headers;

  /** Whether `lookup` answers for this (lower-case) name; the rest go to the copy. */
  protected answers(name: string): boolean {
    return PLAIN_NAME.test(name);
  }

  get(name: string): string | null {
    if (this.copy !== undefined) return this.copy.get(name);
    const lower = name.toLowerCase();
    if (!this.answers(lower)) return this.full().get(name);
    return this.lookup(lower);
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  set(name: string, value: string): void {
    this.full().set(name, value);
  }

  append(name: string, value: string): void {
    this.full().append(name, value);
  }

  delete(name: string): void {
    this.full().delete(name);
  }

  getSetCookie(): string[] {
    return this.full().getSetCookie();
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.full().forEach((value, key) => callback.call(thisArg, value, key, this));
  }

  entries(): HeadersIterator<[string, string]> {
    return this.full().entries();
  }

  keys(): HeadersIterator<string> {
    return this.full().keys();
  }

  values(): HeadersIterator<string> {
    return this.full().values();
  }

  [Symbol.iterator](): HeadersIterator<[string, string]> {
    return this.full()[Symbol.iterator]();
  }

  private full(): Headers {
    return (this.copy ??= this.build());
  }
}

/** A header-name token of the kind the views answer themselves. */
const PLAIN_NAME = /^[a-z0-9-]+$/;

/** What Headers strips from both ends of a value. */
export const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;
