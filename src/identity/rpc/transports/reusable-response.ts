/**
 * A handler that answers the same question many times (Introspect of one token, called by every
 * service on every request) can hand back the very same response object; marking it reusable
 * lets the transports encode it once per wire format. Reused objects must never be mutated.
 */
type Format = 'binary' | 'json';
const serialized = new WeakMap<object, Partial<Record<Format, Uint8Array>>>();

export function markReusable<T extends object>(message: T): T {
  if (!serialized.has(message)) serialized.set(message, {});
  return message;
}

export function serializeOnce<B extends Uint8Array>(message: object, format: Format, encode: () => B): B {
  const known = serialized.get(message);
  if (known === undefined) return encode();
  const bytes = known[format];
  if (bytes !== undefined) return bytes as B;
  return (known[format] = encode());
}
