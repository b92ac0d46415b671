import type { Metadata } from '@grpc/grpc-js';

/**
 * A call's grpc-js Metadata seen as fetch Headers, as connect-node presents request headers.
 * The pipeline reads a few headers by name on every call (authorization, user-agent,
 * x-forwarded-for); those are answered from the Metadata directly. Anything else (iteration,
 * binary keys, a write) works on a full Headers copy made on first use, which answers every
 * later call too.
 */
export class MetadataHeaders implements Headers {
  private copy: Headers | undefined;

  constructor(private readonly md: Metadata) {}

  get(name: string): string | null {
    if (this.copy !== undefined || !PLAIN_NAME.test(name)) return this.full().get(name);
    // What Headers.append would have kept of each value (metadataToHeaders), joined as Headers.get joins.
    let out: string | null = null;
    for (const v of this.md.get(name.toLowerCase())) {
      if (typeof v !== 'string' || FORBIDDEN_VALUE.test(v)) continue;
      const value = v.replace(EDGE_WHITESPACE, '');
      out = out === null ? value : `${out}, ${value}`;
    }
    return out;
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
    return (this.copy ??= metadataToHeaders(this.md));
  }
}

/** A lower- or mixed-case token that is not a binary key: the names the fast path answers. */
const PLAIN_NAME = /^[A-Za-z0-9-]+(?<!-bin)$/i;
/** Values Headers refuses (metadataToHeaders drops them). */
const FORBIDDEN_VALUE = /[\0\r\n]/;
/** What Headers strips from both ends of a value. */
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/** Binary metadata travels base64-encoded in Headers, as connect-node presents it. */
export function metadataToHeaders(md: Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(md.toJSON())) {
    for (const v of values) {
      try {
        headers.append(key, Buffer.isBuffer(v) ? v.toString('base64') : v);
      } catch {
        // Not representable as a fetch header value; no handler of ours reads such a key.
      }
    }
  }
  return headers;
}
