import type { Metadata } from '@grpc/grpc-js';
import { EDGE_WHITESPACE, HeadersView } from './headers-view.js';

/**
 * A call's grpc-js Metadata seen as fetch Headers, as connect-node presents request headers
 * (headers-view.ts): the names the pipeline reads are answered from the Metadata directly.
 */
export class MetadataHeaders extends HeadersView {
  constructor(private readonly md: Metadata) {
    super();
  }

  protected override answers(name: string): boolean {
    return super.answers(name) && !name.endsWith('-bin');
  }

  protected lookup(name: string): string | null {
    // What Headers.append would have kept of each value (metadataToHeaders), joined as Headers.get joins.
    let out: string | null = null;
    for (const v of this.md.get(name)) {
      if (typeof v !== 'string' || FORBIDDEN_VALUE.test(v)) continue;
      const value = v.replace(EDGE_WHITESPACE, '');
      out = out === null ? value : `${out}, ${value}`;
    }
    return out;
  }

  protected build(): Headers {
    return metadataToHeaders(this.md);
  }
}

/** Values Headers refuses (metadataToHeaders drops them). */
const FORBIDDEN_VALUE = /[\0\r\n]/;

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
