import type http from 'node:http';
import { fromBinary, fromJsonString, type DescMessage } from '@bufbuild/protobuf';
import { Code, ConnectError, createConnectRouter, createContextValues, type ContextKey, type Interceptor } from '@connectrpc/connect';
import {
  createAsyncIterable,
  readAllBytes,
  type Compression,
  type UniversalHandler,
  type UniversalServerRequest,
} from '@connectrpc/connect/protocol';
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
  type ConnectNodeAdapterOptions,
} from '@connectrpc/connect-node';
import type { Logger } from '../../../shared/logger.js';
import { decodedRequestKey, requestDecodeFailureKey, undecodableRequest } from '../pipeline/context-keys.js';
import { connectUnaryFastPath } from './connect-unary.js';
import type { MountedService } from './mounted-service.js';
import { decodeRequest, readFailure, type Parsed } from './request-decode.js';

/**
 * connect-node decodes the request before any interceptor runs and answers a body it cannot parse
 * with INTERNAL ("parse binary: ..."), outside our pipeline: no access-log line, no metrics. The
 * codecs are not pluggable, so this wraps each route's handler instead: it reads and decodes the
 * body first, and when that fails it hands connect an empty (valid) message plus the reason under
 * `requestDecodeFailureKey`; the pipeline (pipeline/request-hygiene.ts) then fails the call with
 * INVALID_ARGUMENT like any other bad request (docs/security.md X1). grpc-adapter.ts does the same
 * for the grpc-js port. A body that decodes is not decoded twice: connect gets the empty message
 * too and the pipeline takes the decoded one from `decodedRequestKey`.
 */

export interface GuardedAdapterOptions extends ConnectNodeAdapterOptions {
  readMaxBytes: number;
  maxTimeoutMs: number;
  logger: Logger;
  /** Methods whose plain Connect POSTs are answered by connect-unary.ts instead of the router. */
  direct?: { services: readonly MountedService[]; paths: ReadonlySet<string> };
}

/** connectNodeAdapter (same options, same routing) with every route behind the decode guard. */
export function guardedConnectNodeAdapter(
  options: GuardedAdapterOptions,
): (req: http.IncomingMessage, res: http.ServerResponse, path?: string) => void {
  const compressions = options.acceptCompression ?? [compressionGzip, compressionBrotli];
  // Innermost: an implementation mounted without the pipeline must not answer the empty stand-in
  // (the pipeline takes the decoded message and clears its key; a failure it throws itself).
  const unconsumed: Interceptor = (next) => async (req) => {
    const res = await next(req);
    if (req.contextValues.get(requestDecodeFailureKey) !== undefined || req.contextValues.get(decodedRequestKey) !== undefined) {
      throw new ConnectError('request message could not be decoded', Code.InvalidArgument);
    }
    return res;
  };
  const interceptors = [...(options.interceptors ?? []), unconsumed];
  const router = createConnectRouter({ ...options, acceptCompression: compressions, interceptors });
  options.routes(router);
  const prefix = options.requestPathPrefix ?? '';
  const paths = new Map<string, UniversalHandler>();
  for (const h of router.handlers) paths.set(prefix + h.requestPath, guard(h, compressions, options.readMaxBytes));
  // The direct path knows routes by their plain `/package.Service/Method` paths only.
  const direct =
    options.direct === undefined || prefix !== ''
      ? undefined
      : connectUnaryFastPath({ ...options.direct, readMaxBytes: options.readMaxBytes, maxTimeoutMs: options.maxTimeoutMs, acceptCompression: compressions, logger: options.logger });
  // `path`: the request path without its query, when the caller has worked it out already.
  return (req, res, path = (req.url ?? '').split('?', 1)[0] ?? '') => {
    if (direct !== undefined && direct(req, res, path)) return;
    const handler = paths.get(path);
    if (handler === undefined) {
      if (options.fallback) options.fallback(req, res);
      else res.writeHead(404).end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((err: unknown) => {
        if (ConnectError.from(err).code === Code.Aborted) return;
        options.logger.error({ err, rpc: handler.requestPath }, 'connect handler failed');
      });
  };
}

const CONNECT_UNARY = /^application\/(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;
const GRPC_WEB = /^application\/grpc-web(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i;

function parseRequestType(req: UniversalServerRequest): Parsed | undefined {
  const type = req.header.get('content-type') ?? '';
  let m = CONNECT_UNARY.exec(type);
  if (m) return { framing: 'connect', binary: m[1] === undefined, encoding: identity(req.header.get('content-encoding')) };
  m = GRPC_WEB.exec(type);
  if (m) return { framing: 'grpc-web', binary: m[1] === undefined, encoding: identity(req.header.get('grpc-encoding')) };
  return undefined;
}

const identity = (name: string | null) => (name === null || name === '' || name === 'identity' ? '' : name.toLowerCase());

function guard(handler: UniversalHandler, compressions: Compression[], readMaxBytes: number): UniversalHandler {
  const input = handler.method.input as DescMessage;
  const guarded = async (req: UniversalServerRequest) => {
    // GET (Connect's side-effect-free form) carries the message in the query string.
    if (req.method === 'GET') return handler(inspectGet(req, input));
    const type = parseRequestType(req);
    // Unknown content types and parsed bodies are connect's to refuse (415 and friends).
    if (type === undefined || !isByteStream(req.body)) return handler(req);
    let bytes: Uint8Array;
    try {
      bytes = await readAllBytes(req.body, readMaxBytes, req.header.get('content-length'));
    } catch (err) {
      return handler(replaceBody(req, type, requestDecodeFailureKey, readFailure(err)));
    }
    const decoded = await decodeRequest(bytes, type, input, compressions, readMaxBytes);
    if (decoded.failure !== undefined) return handler(replaceBody(req, type, requestDecodeFailureKey, decoded.failure));
    // An encoding we do not accept: connect refuses it (UNIMPLEMENTED) from the original body.
    if (decoded.message === undefined) return handler({ ...req, body: createAsyncIterable([bytes]) });
    return handler(replaceBody(req, type, decodedRequestKey, decoded.message));
  };
  return Object.assign(guarded, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

const isByteStream = (body: unknown): body is AsyncIterable<Uint8Array> =>
  typeof body === 'object' && body !== null && Symbol.asyncIterator in body;

const EMPTY_BINARY = new Uint8Array(0);
const EMPTY_JSON = new TextEncoder().encode('{}');
/** An already-parsed empty JSON body: connect reads it as the message (its body-parser path), nothing to read or parse. */
const EMPTY_JSON_VALUE = Object.freeze({});

/** The request as connect should see it: an empty message, uncompressed, plus the decoded message or the reason. */
function replaceBody<T>(req: UniversalServerRequest, type: Parsed, key: ContextKey<T>, value: T): UniversalServerRequest {
  // Connect JSON sent without Content-Encoding (what browsers send): the headers need no change
  // (no encoding to drop, and a parsed body has no length to match), so they are not copied.
  if (type.framing === 'connect' && !type.binary && req.header.get('content-encoding') === null) {
    return { ...req, body: EMPTY_JSON_VALUE, contextValues: withValue(req, key, value) };
  }
  const message = type.binary ? EMPTY_BINARY : EMPTY_JSON;
  const body = type.framing === 'grpc-web' ? envelope(message) : message;
  const header = new Headers(req.header);
  header.delete(type.framing === 'grpc-web' ? 'grpc-encoding' : 'content-encoding');
  header.set('content-length', String(body.byteLength));
  return { ...req, header, body: createAsyncIterable([body]), contextValues: withValue(req, key, value) };
}

function envelope(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.byteLength);
  new DataView(out.buffer).setUint32(1, message.byteLength);
  out.set(message, 5);
  return out;
}

function withValue<T>(req: UniversalServerRequest, key: ContextKey<T>, value: T) {
  const values = req.contextValues ?? createContextValues();
  values.set(key, value);
  return values;
}

/** Connect GET: ?message=…&encoding=proto|json[&base64=1][&compression=…]. */
function inspectGet(req: UniversalServerRequest, input: DescMessage): UniversalServerRequest {
  const url = new URL(req.url);
  const q = url.searchParams;
  const encoding = q.get('encoding');
  if (encoding !== 'proto' && encoding !== 'json') return req;
  const ok = (() => {
    try {
      const raw = q.get('message') ?? '';
      const bytes = q.get('base64') === '1' ? Buffer.from(raw, 'base64url') : new TextEncoder().encode(raw);
      const compression = identity(q.get('compression'));
      // Compressed GET messages are rare; connect checks those itself.
      if (compression !== '') return true;
      if (encoding === 'proto') fromBinary(input, bytes);
      else fromJsonString(input, new TextDecoder().decode(bytes), { ignoreUnknownFields: true });
      return true;
    } catch {
      return false;
    }
  })();
  if (ok) return req;
  for (const key of ['message', 'base64', 'compression']) q.delete(key);
  q.set('message', encoding === 'json' ? '{}' : '');
  return { ...req, url: url.toString(), contextValues: withValue(req, requestDecodeFailureKey, undecodableRequest()) };
}
