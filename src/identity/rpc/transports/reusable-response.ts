/**
 * A handler that answers the same question many times (Introspect of one token, called by every
 * service on every request) can hand back the very same response object; marking it reusable
 * lets the grpc-js adapter serialise it once. Reused objects must never be mutated.
 */
const serialized = new WeakMap<object, Buffer | null>();

export function markReusable<T extends object>(message: T): T {
  if (!serialized.has(message)) serialized.set(message, null);
  return message;
}

export function serializeOnce(message: object, encode: () => Buffer): Buffer {
  const known = serialized.get(message);
  if (known === undefined) return encode();
  if (known !== null) return known;
  const bytes = encode();
  serialized.set(message, bytes);
  return bytes;
}
