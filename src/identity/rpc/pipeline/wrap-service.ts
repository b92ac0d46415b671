import { performance } from 'node:perf_hooks';
import type { ClientInfo } from '../../../shared/client-info.js';
import { andThen, isPromise } from '../../../shared/maybe-promise.js';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import type { Logger } from '../../../shared/logger.js';
import { unimplemented } from '../unimplemented.js';
import { writeAccessLine, codeName } from './access-log.js';
import type { AccessLogSummary } from './access-log-summary.js';
import { authenticate, type Authenticator } from './auth-policy.js';
import { trustedProxyList } from './client-address.js';
import { recordClientInfo } from './client-info.js';
import { mapError, type MappedError } from './error-map.js';
import { methodPolicies, policyFor, type MethodPolicy } from './method-policy.js';
import { callMetrics, type CallMetrics, type RpcMetrics } from './metrics.js';
import { checkRequest, takeRequest } from './request-hygiene.js';

/**
 * Everything every call goes through, whichever transport carried it, in this order: client
 * info, request hygiene (a body that did not decode, bad strings), the method's auth policy, the
 * handler, error mapping, the access log (a line per call, or per interval for the busiest methods'
 * successful calls: access-log-summary.ts) and metrics. Each step lives
 * in a file of its own; this composes them. Both transports mount the implementation this returns.
 */

export interface PipelineOptions {
  auth: Authenticator;
  logger: Logger;
  metrics: RpcMetrics;
  /** TRUSTED_PROXIES: IPs or CIDRs whose X-Forwarded-For we believe. */
  trustedProxies: readonly string[];
  policies?: Readonly<Record<string, MethodPolicy>>;
  /** Without it every call writes its own access line. */
  accessLog?: AccessLogSummary;
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
        throw unimplemented(method);
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
  // Everything that depends only on the method is worked out here, once, not per call.
  const rpc = `${service.typeName}/${method.name}`;
  const { logger, metrics, auth } = opts;
  const summarise = opts.accessLog?.recorderFor(rpc);
  const byTransport = new Map<string, CallMetrics>();
  const metricsFor = (transport: string): CallMetrics => {
    let m = byTransport.get(transport);
    if (m === undefined) {
      m = callMetrics(metrics, { service: service.typeName, method: method.name, transport });
      byTransport.set(transport, m);
    }
    return m;
  };
  const finish = (start: number, info: ClientInfo, ctx: HandlerContext, measured: CallMetrics, failure: MappedError | undefined): void => {
    const ms = performance.now() - start;
    const code = failure === undefined ? 'ok' : codeName(failure.error.code);
    measured.finished(code, ms / 1000);
    if (failure !== undefined || summarise === undefined || !summarise(ms)) {
      writeAccessLine(logger, rpc, code, ms / 1000, info, ctx, failure);
    }
  };
  // Not async: when authentication and the handler answer from memory (Introspect, GetCurrentUser
  // with warm caches), so does the call, without a promise per step (maybe-promise.ts). A sync
  // throw and a rejection are mapped, logged and counted the same way.
  return (received, ctx) => {
    const start = performance.now();
    const req = takeRequest(received, ctx);
    const info = recordClientInfo(ctx, proxies);
    const measured = metricsFor(ctx.protocolName);
    measured.started();
    let result: unknown;
    try {
      checkRequest(method.input, req, ctx);
      result = andThen(authenticate(policy, ctx, auth), () => fn(req, ctx));
    } catch (err) {
      const failure = mapError(err);
      finish(start, info, ctx, measured, failure);
      throw failure.error;
    }
    if (!isPromise(result)) {
      finish(start, info, ctx, measured, undefined);
      return result;
    }
    return result.then(
      (value) => {
        finish(start, info, ctx, measured, undefined);
        return value;
      },
      (err: unknown) => {
        const failure = mapError(err);
        finish(start, info, ctx, measured, failure);
        throw failure.error;
      },
    );
  };
}
