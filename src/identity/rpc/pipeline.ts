import { performance } from 'node:perf_hooks';
import { Code, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { DescMethod, DescService, Message } from '@bufbuild/protobuf';
import { LatchError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { clientAddress, trustedProxyList } from './client-address.js';
import {
  callerKey,
  clientInfoKey,
  peerAddressKey,
  principalKey,
  requestDecodeFailureKey,
  type Principal,
} from './context-keys.js';
import type { ClientInfo } from '../../shared/client-info.js';
import { mapError, type MappedError } from './error-map.js';
import { methodPolicies, policyFor, type MethodPolicy } from './method-policy.js';
import type { RpcMetrics } from './metrics.js';
import { assertCleanStrings } from './string-fields.js';

/**
 * Everything every call goes through, whichever transport carried it: client info, request
 * hygiene (a body that did not decode, bad strings), the method's auth policy, the handler,
 * error mapping, one log line per call (failures included) and metrics. Both
 * grpc-server.ts and http-server.ts mount the implementation this returns.
 */

export interface Authenticator {
  /** Verifies an access token; throws LatchError('unauthenticated', ...) when it is not good. */
  authenticateUser(bearerToken: string): Promise<Principal>;
  /** Verifies an introspection client secret and returns the client's name. */
  authenticateCaller(bearerSecret: string): Promise<string>;
}

export interface PipelineOptions {
  auth: Authenticator;
  logger: Logger;
  metrics: RpcMetrics;
  /** TRUSTED_PROXIES: IPs or CIDRs whose X-Forwarded-For we believe. */
  trustedProxies: readonly string[];
  policies?: Readonly<Record<string, MethodPolicy>>;
}

type UnaryFn = (req: unknown, ctx: HandlerContext) => unknown;

export function wrapService<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
  opts: PipelineOptions,
): ServiceImpl<S> {
  const proxies = trustedProxyList(opts.trustedProxies);
  const out: Record<string, UnaryFn> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') {
      throw new Error(`${service.typeName}/${method.name}: only unary methods are supported`);
    }
    const given = (impl as Record<string, UnaryFn | undefined>)[method.localName];
    const fn: UnaryFn =
      given?.bind(impl) ??
      (() => {
        throw new LatchError('unimplemented', 'ERR_UNIMPLEMENTED', `${method.name} is not implemented`);
      });
    out[method.localName] = wrapMethod(service, method, fn, policyFor(service, method, opts.policies ?? methodPolicies), proxies, opts);
  }
  return out as unknown as ServiceImpl<S>;
}

function wrapMethod(
  service: DescService,
  method: DescMethod,
  fn: UnaryFn,
  policy: MethodPolicy,
  proxies: ReturnType<typeof trustedProxyList>,
  opts: PipelineOptions,
): UnaryFn {
  const rpc = `${service.typeName}/${method.name}`;
  const { logger, metrics } = opts;
  return async (req, ctx) => {
    const start = performance.now();
    const transport = ctx.protocolName;
    const info: ClientInfo = {
      ip: clientAddress(ctx.values.get(peerAddressKey), ctx.requestHeader.get('x-forwarded-for'), proxies),
      userAgent: ctx.requestHeader.get('user-agent') ?? '',
    };
    ctx.values.set(clientInfoKey, info);
    const inFlight = { service: service.typeName, method: method.name, transport };
    metrics.rpcInFlight.inc(inFlight);
    let failure: MappedError | undefined;
    try {
      // Before authentication: the answer depends only on the bytes sent, not on who sent them.
      const undecodable = ctx.values.get(requestDecodeFailureKey);
      if (undecodable !== undefined) throw undecodable;
      assertCleanStrings(method.input, req as Message);
      await authenticate(policy, ctx, opts.auth);
      return await fn(req, ctx);
    } catch (err) {
      failure = mapError(err);
      throw failure.error;
    } finally {
      const seconds = (performance.now() - start) / 1000;
      const code = codeName(failure?.error.code);
      metrics.rpcInFlight.dec(inFlight);
      metrics.rpcDuration.observe({ service: service.typeName, method: method.name, code, transport }, seconds);
      // Never request/response bodies or headers: they carry passwords and tokens. A failure's
      // details (error id, kind, the cause of a server fault) ride on this same line.
      const level = failure === undefined ? 'info' : atLeastInfo(failure.level);
      logger[level](
        {
          ...failure?.log,
          rpc,
          code,
          durationMs: Math.round(seconds * 1e4) / 10,
          ip: info.ip,
          transport,
          userId: ctx.values.get(principalKey)?.userId,
          caller: ctx.values.get(callerKey),
          errorId: failure?.error.metadata.get('latch-error-id') ?? undefined,
        },
        'rpc',
      );
    }
  };
}

const atLeastInfo = (l: MappedError['level']) => (l === 'debug' ? 'info' : l);

/** "ok", "invalid_argument", ...: the names gRPC and Connect use on the wire. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return 'ok';
  const name = Code[code];
  return name === undefined ? String(code) : name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** RFC 6750 §2.1: `Bearer <token>`; the scheme name is case-insensitive (RFC 9110 §11.1). */
function bearerCredential(ctx: HandlerContext): string {
  const header = ctx.requestHeader.get('authorization');
  if (header === null || header.trim() === '') {
    throw new LatchError('unauthenticated', 'ERR_MISSING_CREDENTIALS', 'missing authorization');
  }
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  if (match === null) {
    throw new LatchError('unauthenticated', 'ERR_INVALID_AUTH_SCHEME', 'authorization must use the Bearer scheme');
  }
  return match[1]!;
}

async function authenticate(policy: MethodPolicy, ctx: HandlerContext, auth: Authenticator): Promise<void> {
  switch (policy.auth) {
    case 'none':
      return;
    case 'caller':
      ctx.values.set(callerKey, await auth.authenticateCaller(bearerCredential(ctx)));
      return;
    case 'user':
    case 'admin': {
      const principal = await auth.authenticateUser(bearerCredential(ctx));
      ctx.values.set(principalKey, principal);
      if (policy.auth === 'admin' && principal.role !== 'admin') {
        throw new LatchError('permission_denied', 'ERR_ADMIN_REQUIRED', 'admin role required');
      }
      if (principal.passwordMustChange && policy.allowWhilePasswordMustChange !== true) {
        throw new LatchError('failed_precondition', 'ERR_PASSWORD_CHANGE_REQUIRED', 'password change required');
      }
      return;
    }
  }
}

/** The authenticated user; only methods whose policy is 'user' or 'admin' have one. */
export function requirePrincipal(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  if (p === undefined) throw new LatchError('unauthenticated', 'ERR_MISSING_CREDENTIALS', 'missing authorization');
  return p;
}

/** The authenticated introspection client; only methods whose policy is 'caller' have one. */
export function requireCaller(ctx: HandlerContext): string {
  const c = ctx.values.get(callerKey);
  if (c === undefined) throw new LatchError('unauthenticated', 'ERR_MISSING_CREDENTIALS', 'missing authorization');
  return c;
}

export function clientInfo(ctx: HandlerContext): ClientInfo {
  return ctx.values.get(clientInfoKey);
}
