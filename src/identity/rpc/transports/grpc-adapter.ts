import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import { create, fromBinary, toBinary, type DescMethodUnary, type DescService } from '@bufbuild/protobuf';
import { decodeBinary } from './binary-request.js';
import { GrpcCallContext } from './grpc-call-context.js';
import { serializeOnce } from './reusable-response.js';
import { isPromise } from '../../../shared/maybe-promise.js';
import {
  Metadata,
  type Server,
  type status as Status,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { Logger } from '../../../shared/logger.js';
import { peerAddressKey, requestDecodeFailureKey, undecodableRequest } from '../pipeline/context-keys.js';
import { INTERNAL_MESSAGE, mapError } from '../pipeline/error-map.js';
import { unimplemented } from '../unimplemented.js';

/**
 * Mounts a protobuf-es service implementation (the same one connect-node serves) on grpc-js.
 * Connect's Code numbers are the gRPC status numbers, so errors map one to one.
 */

/** Returned by the deserializer instead of throwing: grpc-js would answer INTERNAL, we say INVALID_ARGUMENT. */
const UNDECODABLE = Symbol('undecodable request');

const STATUS_DETAILS = 'grpc-status-details-bin';

export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const method of unaryMethods(service)) {
    def[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      originalName: method.name,
      requestSerialize: (m: unknown) => Buffer.from(toBinary(method.input, create(method.input, m as never))),
      requestDeserialize: (b: Buffer) => {
        try {
          return decodeBinary(method.input, b);
        } catch {
          return UNDECODABLE;
        }
      },
      responseSerialize: (m: unknown) =>
        serializeOnce(m as object, 'binary', () => Buffer.from(toBinary(method.output, create(method.output, m as never)))),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
    };
  }
  return def as ServiceDefinition;
}

function unaryMethods(service: DescService): DescMethodUnary[] {
  return service.methods.map((m) => {
    if (m.methodKind !== 'unary') throw new Error(`${service.typeName}/${m.name}: only unary methods are supported`);
    return m as DescMethodUnary;
  });
}

type UnaryFn = (req: unknown, ctx: HandlerContext) => unknown;

export function grpcHandlers(
  service: DescService,
  impl: object,
  logger: Logger,
): UntypedServiceImplementation {
  const handlers: UntypedServiceImplementation = {};
  for (const method of unaryMethods(service)) {
    const fn = (impl as Record<string, UnaryFn | undefined>)[method.localName]?.bind(impl);
    handlers[method.localName] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      handle(service, method, fn, call, callback, logger);
    };
  }
  return handlers;
}

export function addGrpcService(
  server: Pick<Server, 'addService'>,
  service: DescService,
  impl: object,
  logger: Logger,
): void {
  server.addService(grpcServiceDefinition(service), grpcHandlers(service, impl, logger));
}

function handle(
  service: DescService,
  method: DescMethodUnary,
  fn: UnaryFn | undefined,
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  logger: Logger,
): void {
  // The context connect's createHandlerContext would build, without what a unary grpc-js call
  // does not need, and with the signal and response headers made only when used.
  const ctx = new GrpcCallContext(service, method, call);
  ctx.values.set(peerAddressKey, () => call.getPeer());
  let result: unknown;
  try {
    if (fn === undefined) throw mapError(unimplemented(method)).error;
    let request = call.request;
    if (request === UNDECODABLE) {
      // The pipeline fails the call, so it is logged and counted like any other (X1).
      ctx.values.set(requestDecodeFailureKey, undecodableRequest());
      request = create(method.input);
    }
    result = fn(request, ctx);
    // An implementation mounted without the pipeline must not answer an empty stand-in message.
    if (request !== call.request) {
      if (isPromise(result)) result.catch(() => undefined);
      throw new ConnectError('request message could not be decoded', Code.InvalidArgument);
    }
  } catch (err) {
    fail(ctx, call, callback, err, logger);
    return;
  }
  // An answer from memory goes out now; one that waits on I/O when it comes (maybe-promise.ts).
  if (isPromise(result)) {
    result.then(
      (value) => answer(ctx, method, call, callback, value, logger),
      (err: unknown) => fail(ctx, call, callback, err, logger),
    );
  } else {
    answer(ctx, method, call, callback, result, logger);
  }
}

function answer(
  ctx: GrpcCallContext,
  method: DescMethodUnary,
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  result: unknown,
  logger: Logger,
): void {
  try {
    sendHeaders(call, ctx.writtenHeader());
    const trailer = ctx.writtenTrailer();
    callback(null, create(method.output, result as never), trailer === undefined ? undefined : headersToMetadata(trailer));
  } catch (err) {
    fail(ctx, call, callback, err, logger);
    return;
  }
  ctx.finish();
}

function fail(
  ctx: GrpcCallContext,
  call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<unknown>,
  err: unknown,
  logger: Logger,
): void {
  try {
    sendHeaders(call, ctx.writtenHeader());
    const ce = asWireError(err, logger);
    const trailers = new Headers(ctx.writtenTrailer());
    // Same encoding connect-node uses: error metadata plus a google.rpc.Status with the details.
    setTrailerStatus(trailers, ce);
    const metadata = headersToMetadata(trailers);
    const detailsBin = trailers.get(STATUS_DETAILS);
    if (detailsBin !== null) metadata.set(STATUS_DETAILS, Buffer.from(detailsBin, 'base64'));
    callback({ name: 'ConnectError', message: ce.rawMessage, code: ce.code as number as Status, details: ce.rawMessage, metadata });
  } finally {
    ctx.finish();
  }
}

/** Only wire errors reach a client as they are; the pipeline normally produced them already. */
function asWireError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  logger.error({ err }, 'unexpected error in grpc handler');
  return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
}

function sendHeaders(call: ServerUnaryCall<unknown, unknown>, headers: Headers | undefined): void {
  if (headers === undefined) return;
  let any = false;
  headers.forEach(() => (any = true));
  if (any) call.sendMetadata(headersToMetadata(headers));
}

/** Protocol-owned keys are grpc-js's to set; everything else is passed through. */
export function headersToMetadata(headers: Headers): Metadata {
  const md = new Metadata();
  headers.forEach((value, key) => {
    if (key.startsWith('grpc-') || key === 'content-type' || key === 'te') return;
    try {
      if (key.endsWith('-bin')) md.add(key, Buffer.from(value, 'base64'));
      else md.add(key, value);
    } catch {
      // grpc-js rejects keys or values HTTP/2 cannot carry; dropping one is better than failing the call.
    }
  });
  return md;
}
