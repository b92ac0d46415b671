import type { HandlerContext } from '@connectrpc/connect';
import type { DescMethodUnary, DescService } from '@bufbuild/protobuf';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { LazyCallContext } from './lazy-call-context.js';
import { MetadataHeaders } from './metadata-headers.js';

/** The HandlerContext of one unary grpc-js call (lazy-call-context.ts). */
export class GrpcCallContext extends LazyCallContext implements HandlerContext {
  readonly protocolName = 'grpc';
  readonly requestMethod = 'POST';
  readonly url: string;
  readonly requestHeader: Headers;

  constructor(
    readonly service: DescService,
    readonly method: DescMethodUnary,
    private readonly call: ServerUnaryCall<unknown, unknown>,
  ) {
    super(Number(call.getDeadline()));
    this.url = `/${service.typeName}/${method.name}`;
    this.requestHeader = new MetadataHeaders(call.metadata);
  }

  protected cancelled(): boolean {
    return this.call.cancelled;
  }

  protected onCancel(onCancel: () => void): () => void {
    this.call.once('cancelled', onCancel);
    return () => this.call.removeListener('cancelled', onCancel);
  }
}
