import type http from 'node:http';
import { create, type DescMessage, type DescMethodUnary, type DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import {
  compressionNegotiate,
  createMethodSerializationLookup,
  validateUniversalHandlerOptions,
  type Compression,
  type MethodSerializationLookup,
} from '@connectrpc/connect/protocol';
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  errorToJsonBytes,
  parseContentType,
  parseTimeout,
} from '@connectrpc/connect/protocol-connect';
import type { Logger } from '../../../shared/logger.js';
import { peerAddressKey, requestDecodeFailureKey } from '../pipeline/context-keys.js';
import { INTERNAL_MESSAGE } from '../pipeline/error-map.js';
import { EDGE_WHITESPACE, HeadersView } from './headers-view.js';
import { LazyCallContext } from './lazy-call-context.js';
import { decodeRequest, readFailure } from './request-decode.js';
import type { MountedService } from './mounted-service.js';
import { serializeOnce } from './reusable-response.js';

/**
 * Connect unary POSTs of a few hot methods, answered on node:http directly instead of through
 * connect-node's router. Those methods (Introspect, GetJwks, GetCurrentUser) are called by
 * every service on every request, and connect-node's per-call machinery (a universal request
 * with a fetch Headers copy and two AbortControllers, an abort with a fresh DOMException at the
 * end of every call and another when the response closes, async iterables for the body) costs
 * more than the calls. Here the context is built lazily as on the grpc-js port
 * (lazy-call-context.ts) and a reused response (reusable-response.ts) is encoded once.
 *
 * The protocol's rules are connect's own: the content types, the timeout header, the
 * serializers, compression negotiation, the error body and HTTP status all come from
 * `@connectrpc/connect`'s protocol modules with the options the router is given; the answer is
 * the same bytes connect-node gives (connect-unary.test.ts compares them). Only the plain form is
 * taken: a POST with a Connect unary content type and no request compression. Everything else
 * (GET, compressed requests, gRPC-Web, other methods) goes to connect-node. No Connect
 * interceptor runs here: the methods served must be ones no interceptor of the listener acts on.
 */

export interface ConnectUnaryOptions {
  services: readonly MountedService[];
  /** Request paths (`/package.Service/Method`) answered here. */
  paths: ReadonlySet<string>;
  readMaxBytes: number;
  maxTimeoutMs: number;
  acceptCompression: Compression[];
  logger: Logger;
}

interface Route {
  service: DescService;
  method: DescMethodUnary;
  fn: (req: unknown, ctx: HandlerContext) => unknown;
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

/** Returns a function that answers a request and says true, or says false and leaves it alone. */
export function connectUnaryFastPath(opts: ConnectUnaryOptions): (req: http.IncomingMessage, res: http.ServerResponse, path: string) => boolean {
  const options = validateUniversalHandlerOptions({
    readMaxBytes: opts.readMaxBytes,
    maxTimeoutMs: opts.maxTimeoutMs,
    acceptCompression: opts.acceptCompression,
  });
  const routes = new Map<string, Route>();
  for (const { service, impl } of opts.services) {
    for (const method of service.methods) {
      const path = `/${service.typeName}/${method.name}`;
      if (!opts.paths.has(path)) continue;
      if (method.methodKind !== 'unary') throw new Error(`${path}: only unary methods can be answered directly`);
      const fn = (impl as Record<string, Route['fn'] | undefined>)[method.localName];
      if (fn === undefined) throw new Error(`${path}: no implementation to answer directly`);
      routes.set(path, {
        service,
        method: method as DescMethodUnary,
        fn: fn.bind(impl),
        serialization: createMethodSerializationLookup(method, options.binaryOptions, options.jsonOptions, options),
      });
    }
  }
  for (const path of opts.paths) if (!routes.has(path)) throw new Error(`${path}: not a mounted method`);

  return (req, res, path) => {
    const route = routes.get(path);
    if (route === undefined || req.method !== 'POST') return false;
    const type = parseContentType(req.headers['content-type'] ?? null);
    if (type === undefined || type.stream) return false;
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    serve(route, type.binary, req, res, options, opts.logger).catch((err: unknown) => {
      opts.logger.error({ err, rpc: path }, 'connect handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-length': '0' }).end();
      else res.destroy();
    });
    return true;
  };
}

type HandlerOptions = ReturnType<typeof validateUniversalHandlerOptions>;

async function serve(
  route: Route,
  binary: boolean,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: HandlerOptions,
  logger: Logger,
): Promise<void> {
  const timeout = parseTimeout(header(req, 'connect-timeout-ms'), options.maxTimeoutMs);
  const ctx = new HttpCallContext(route, req, res, timeout.timeoutMs === undefined ? NaN : Date.now() + timeout.timeoutMs);
  ctx.values.set(peerAddressKey, req.socket.remoteAddress ?? '');
  let status = 200;
  let contentType = binary ? contentTypeUnaryProto : contentTypeUnaryJson;
  let body: Uint8Array;
  try {
    if (timeout.error !== undefined) throw timeout.error;
    const message = await readMessage(route.method, binary, req, ctx, options);
    const output = create(route.method.output, (await route.fn(message, ctx)) as never);
    // The pipeline fails a call whose body did not decode; an implementation without it must not answer the stand-in.
    if (ctx.values.get(requestDecodeFailureKey) !== undefined) throw new ConnectError('request message could not be decoded', Code.InvalidArgument);
    const serializer = route.serialization.getO(binary);
    // A Buffer view: the grpc-js port may answer from the same cached binary encoding.
    body = serializeOnce(output, binary ? 'binary' : 'json', () => {
      const bytes = serializer.serialize(output);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  } catch (err) {
    let error: ConnectError;
    if (err instanceof ConnectError) error = err;
    else {
      // The pipeline already maps errors; this is the fence for an implementation mounted without it.
      logger.error({ err, rpc: ctx.url }, 'unexpected error in connect handler');
      error = new ConnectError(INTERNAL_MESSAGE, Code.Internal);
    }
    status = codeToHttpStatus(error.code);
    contentType = contentTypeUnaryJson;
    error.metadata.forEach((value, key) => ctx.responseHeader.set(key, value));
    body = errorToJsonBytes(error, options.jsonOptions);
  } finally {
    ctx.finish();
  }
  const out: Record<string, string | string[]> = { 'content-type': contentType };
  ctx.writtenHeader()?.forEach((value, key) => add(out, key, value));
  ctx.writtenTrailer()?.forEach((value, key) => add(out, `trailer-${key}`, value));
  const compression = compressionNegotiate(options.acceptCompression, null, header(req, 'accept-encoding'), 'Accept-Encoding').response;
  if (compression !== null && body.byteLength >= options.compressMinBytes) {
    body = await compression.compress(body);
    out['content-encoding'] = compression.name;
  }
  out['content-length'] = String(body.byteLength);
  res.writeHead(status, out);
  res.end(body);
}

/** As connect writes response Headers to node: repeated names (Set-Cookie) become arrays, a later set wins otherwise. */
function add(out: Record<string, string | string[]>, key: string, value: string): void {
  const known = out[key];
  if (key !== 'set-cookie' || known === undefined) out[key] = key === 'set-cookie' ? [value] : value;
  else if (Array.isArray(known)) known.push(value);
}

const header = (req: http.IncomingMessage, name: string): string | null => {
  const v = req.headers[name];
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
};

/**
 * The request message, or, when the body cannot be read or decoded, an empty one with the reason
 * under requestDecodeFailureKey: the pipeline fails the call with it (docs/security.md X1), as
 * http-decode-guard.ts does for connect-node's routes.
 */
async function readMessage(method: DescMethodUnary, binary: boolean, req: http.IncomingMessage, ctx: HttpCallContext, options: HandlerOptions): Promise<unknown> {
  let bytes: Uint8Array;
  try {
    bytes = await readBody(req, options.readMaxBytes);
  } catch (err) {
    ctx.values.set(requestDecodeFailureKey, readFailure(err));
    return create(method.input);
  }
  const decoded = await decodeRequest(bytes, { framing: 'connect', binary, encoding: '' }, method.input, options.acceptCompression, options.readMaxBytes);
  if (decoded.message !== undefined) return decoded.message;
  ctx.values.set(requestDecodeFailureKey, decoded.failure);
  return create(method.input);
}

/** The whole body, refused beyond `max` bytes (RESOURCE_EXHAUSTED) and when the client goes away first. */
function readBody(req: http.IncomingMessage, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) return Promise.reject(tooLarge(declared, max));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', done).off('close', onClose);
      if (err !== undefined) reject(err);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > max) done(tooLarge(size, max));
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onClose = () => done(new ConnectError('request body ended early', Code.InvalidArgument));
    req.on('data', onData).once('end', onEnd).once('error', done).once('close', onClose);
  });
}

const tooLarge = (size: number, max: number) =>
  new ConnectError(`message size ${size} is larger than configured readMaxBytes ${max}`, Code.ResourceExhausted);

/** The HandlerContext of one call answered here (lazy-call-context.ts). */
class HttpCallContext extends LazyCallContext implements HandlerContext {
  readonly protocolName = 'connect';
  readonly requestMethod = 'POST';
  readonly service: DescService;
  readonly method: DescMethodUnary;
  readonly requestHeader: Headers;

  constructor(
    route: Route,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    deadline: number,
  ) {
    super(deadline);
    this.service = route.service;
    this.method = route.method;
    this.requestHeader = new NodeRequestHeaders(req.headers);
  }

  /** As connect-node gives it: the request URL with the Host header's authority. */
  get url(): string {
    return new URL(this.req.url ?? '', `http://${this.req.headers.host ?? 'localhost'}`).toString();
  }

  protected cancelled(): boolean {
    return this.req.socket.destroyed;
  }

  protected onCancel(onCancel: () => void): () => void {
    this.res.once('close', onCancel);
    return () => this.res.removeListener('close', onCancel);
  }
}

/** node:http's request headers seen as fetch Headers (headers-view.ts), as connect-node converts them. */
export class NodeRequestHeaders extends HeadersView {
  constructor(private readonly headers: http.IncomingHttpHeaders) {
    super();
  }

  protected lookup(name: string): string | null {
    const v = this.headers[name];
    if (v === undefined) return null;
    if (typeof v === 'string') return v.replace(EDGE_WHITESPACE, '');
    return v.map((e) => e.replace(EDGE_WHITESPACE, '')).join(', ');
  }

  protected build(): Headers {
    return nodeHeadersToHeaders(this.headers);
  }
}

/** connect-node's nodeHeaderToWebHeader for a node:http request. */
export function nodeHeadersToHeaders(headers: http.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k.startsWith(':')) continue;
    if (typeof v === 'string') out.append(k, v);
    else for (const e of v) out.append(k, e);
  }
  return out;
}
