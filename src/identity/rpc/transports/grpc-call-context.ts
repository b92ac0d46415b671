import { Code, ConnectError, createContextValues, type ContextValues, type HandlerContext } from '@connectrpc/connect';
import type { DescMethodUnary, DescService } from '@bufbuild/protobuf';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { MetadataHeaders } from './metadata-headers.js';

/**
 * The HandlerContext of one unary grpc-js call: what connect's createHandlerContext builds,
 * with each costly part made on first use. Most calls never read the signal or write a response
 * header, so they make no AbortController, no cancel listener, no deadline timer and no Headers.
 *
 * The signal keeps its meaning whenever it is read: it aborts when the client cancels, when the
 * client's deadline passes and when the call finishes; read after one of those, it is already
 * aborted with the same reason.
 */
export class GrpcCallContext implements HandlerContext {
  readonly protocolName = 'grpc';
  readonly requestMethod = 'POST';
  readonly url: string;
  readonly requestHeader: Headers;
  readonly values: ContextValues;
  readonly timeoutMs: () => number | undefined;

  private readonly deadline: number;
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private onCancel: (() => void) | undefined;
  private finished = false;
  private header: Headers | undefined;
  private trailer: Headers | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethodUnary,
    private readonly call: ServerUnaryCall<unknown, unknown>,
  ) {
    this.url = `/${service.typeName}/${method.name}`;
    this.requestHeader = new MetadataHeaders(call.metadata);
    this.values = createContextValues();
    const deadline = Number(call.getDeadline());
    this.deadline = deadline;
    this.timeoutMs = Number.isFinite(deadline) ? () => deadline - Date.now() : noDeadline;
  }

  get signal(): AbortSignal {
    if (this.abort !== undefined) return this.abort.signal;
    const abort = (this.abort = new AbortController());
    if (this.finished) abort.abort(CALL_FINISHED);
    else if (this.call.cancelled) abort.abort(cancelled());
    else {
      this.onCancel = () => abort.abort(cancelled());
      this.call.once('cancelled', this.onCancel);
      if (Number.isFinite(this.deadline)) {
        const left = this.deadline - Date.now();
        if (left <= 0) abort.abort(timedOut());
        else this.timer = setTimeout(() => abort.abort(timedOut()), left);
      }
    }
    return abort.signal;
  }

  get responseHeader(): Headers {
    return (this.header ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.trailer ??= new Headers());
  }

  /** Response headers a handler wrote, or undefined when none was asked for. */
  writtenHeader(): Headers | undefined {
    return this.header;
  }

  writtenTrailer(): Headers | undefined {
    return this.trailer;
  }

  /**
   * The call is over: anything tied to the signal is told to stop. A shared reason: without one
   * every call would build a DOMException (a measurable cost).
   */
  finish(): void {
    this.finished = true;
    const abort = this.abort;
    if (abort === undefined) return;
    if (this.onCancel !== undefined) this.call.removeListener('cancelled', this.onCancel);
    clearTimeout(this.timer);
    abort.abort(CALL_FINISHED);
  }
}

const noDeadline = (): number | undefined => undefined;

const CALL_FINISHED = new ConnectError('call finished', Code.Canceled);
const cancelled = () => new ConnectError('operation was cancelled', Code.Canceled);
const timedOut = () => new ConnectError('the operation timed out', Code.DeadlineExceeded);
