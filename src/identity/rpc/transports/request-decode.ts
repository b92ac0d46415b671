import { fromJsonString, type DescMessage } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Compression } from '@connectrpc/connect/protocol';
import { LatchError } from '../../../shared/errors.js';
import { undecodableRequest } from '../pipeline/context-keys.js';
import { decodeBinary } from './binary-request.js';

/**
 * Reading a request message off the HTTP listener the way connect-node would, but with a failure
 * reported as a LatchError for the pipeline instead of connect's INTERNAL answer (docs/security.md
 * X1). Shared by http-decode-guard.ts (connect-node's routes) and connect-unary.ts.
 */

export type Framing = 'connect' | 'grpc-web';
export interface Parsed {
  framing: Framing;
  binary: boolean;
  /** Name of the compression the client applied, '' for none. */
  encoding: string;
}

/** Too large stays RESOURCE_EXHAUSTED; a truncated or otherwise unreadable body is INVALID_ARGUMENT. */
export function readFailure(err: unknown): LatchError {
  const ce = ConnectError.from(err);
  if (ce.code === Code.ResourceExhausted) {
    return new LatchError('resource_exhausted', 'ERR_MESSAGE_TOO_LARGE', 'request message is too large');
  }
  return new LatchError('invalid_argument', 'ERR_UNREADABLE_REQUEST', 'request body could not be read');
}

/** The message, or why there is none; neither when the encoding is one connect should refuse. */
export async function decodeRequest(
  bytes: Uint8Array,
  type: Parsed,
  input: DescMessage,
  compressions: Compression[],
  readMaxBytes: number,
): Promise<{ message?: unknown; failure?: LatchError }> {
  let payload = bytes;
  let compressed = type.encoding !== '';
  if (type.framing === 'grpc-web') {
    // Unary: exactly one envelope, flags 0 (plain) or 1 (compressed); no trailers from a client.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 5 || (bytes[0]! & ~1) !== 0 || view.getUint32(1) !== bytes.byteLength - 5) return { failure: undecodableRequest() };
    compressed = (bytes[0]! & 1) === 1;
    payload = bytes.subarray(5);
  }
  try {
    if (compressed) {
      const compression = compressions.find((c) => c.name === type.encoding);
      // An encoding we do not accept is connect's to refuse (UNIMPLEMENTED).
      if (compression === undefined) return {};
      payload = await compression.decompress(payload, readMaxBytes);
    }
    // The options connect itself decodes with (unknown fields kept in binary, ignored in JSON).
    if (type.binary) return { message: decodeBinary(input, payload) };
    return { message: fromJsonString(input, textDecoder.decode(payload), { ignoreUnknownFields: true }) };
  } catch (err) {
    return { failure: err instanceof ConnectError && err.code === Code.ResourceExhausted ? readFailure(err) : undecodableRequest() };
  }
}

const textDecoder = new TextDecoder();
