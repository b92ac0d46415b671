import { Code, ConnectError, createContextValues, type ContextValues } from '@connectrpc/connect';

/**
 * What connect's createHandlerContext builds for a unary call, with each costly part made on
 * first use. Most calls never read the signal or write a response header, so they make no
 * AbortController, no cancel listener, no deadline timer and no Headers. The transports' own
 * contexts (grpc-call-context.ts, connect-unary.ts) add how a call is cancelled.
 *
 * The signal keeps its meaning whenever it is read: it aborts when the client cancels, when the
 * client's deadline passes and when the call finishes; read after one of those, it is already
 * aborted with the same reason.
 */
export abstract class LazyCallContext {
  readonly values: ContextValues = createContextValues();
  readonly timeoutMs: () => number | undefined;

  private readonly deadline: number;
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;
  private finished = false;
  private header: Headers | undefined;
  private trailer: Headers | undefined;

  /** `deadline`: when the client stops waiting (ms since the epoch), or a non-finite number for never. */
  constructor(deadline: number) {
    this.deadline = deadline;
    this.timeoutMs = Number.isFinite(deadline) ? () => deadline - Date.now() : noDeadline;
  }

  /** Whether the client has gone away already. */
  protected abstract cancelled(): boolean;

  /** Calls `onCancel` when the client goes away; returns what stops listening. */
  protected abstract onCancel(onCancel: () => void): () => void;

  get signal(): AbortSignal {
    if (this.abort !== undefined) return this.abort.signal;
    const abort = (this.abort = new AbortController());
    if (this.finished) abort.abort(CALL_FINISHED);
    else if (this.cancelled()) abort.abort(cancelledError());
    else {
      this.stopListening = this.onCancel(() => abort.abort(cancelledError()));
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
    this.stopListening?.();
    clearTimeout(this.timer);
    abort.abort(CALL_FINISHED);
  }
}

const noDeadline = (): number | undefined => undefined;

const CALL_FINISHED = new ConnectError('call finished', Code.Canceled);
const cancelledError = () => new ConnectError('operation was cancelled', Code.Canceled);
const timedOut = () => new ConnectError('the operation timed out', Code.DeadlineExceeded);
