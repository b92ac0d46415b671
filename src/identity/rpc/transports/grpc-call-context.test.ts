import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { TokenIntrospectionService } from '../../../gen/identity/v1/introspection_pb.js';
import { grpcClient } from '../../../../test/rpc/grpc-client.js';
import { addGrpcService } from './grpc-adapter.js';
import { GrpcCallContext } from './grpc-call-context.js';

const service = TokenIntrospectionService;
const method = service.method.introspect;

function fakeCall(deadline: number = Infinity) {
  const call = Object.assign(new EventEmitter(), { metadata: new Metadata(), cancelled: false, getDeadline: () => deadline });
  const cancel = () => {
    call.cancelled = true;
    call.emit('cancelled', 'cancelled');
  };
  return { call, cancel, ctx: new GrpcCallContext(service, method, call as unknown as ServerUnaryCall<unknown, unknown>) };
}

const reason = (s: AbortSignal) => ConnectError.from(s.reason);

afterEach(() => {
  vi.useRealTimers();
});

describe('GrpcCallContext signal', () => {
  it('listens for cancellation only once the signal is read, and stops listening when the call finishes', () => {
    const { call, ctx } = fakeCall();
    expect(call.listenerCount('cancelled')).toBe(0);
    const signal = ctx.signal;
    expect(ctx.signal).toBe(signal);
    expect(call.listenerCount('cancelled')).toBe(1);
    ctx.finish();
    expect(call.listenerCount('cancelled')).toBe(0);
    expect(signal.aborted).toBe(true);
    expect(reason(signal).code).toBe(Code.Canceled);
  });

  it('aborts with CANCELED when the client cancels after the signal was read', () => {
    const { cancel, ctx } = fakeCall();
    const signal = ctx.signal;
    expect(signal.aborted).toBe(false);
    cancel();
    expect(signal.aborted).toBe(true);
    expect(reason(signal).code).toBe(Code.Canceled);
    expect(reason(signal).rawMessage).toBe('operation was cancelled');
  });

  it('is already aborted when first read after the client cancelled', () => {
    const { cancel, ctx } = fakeCall();
    cancel();
    expect(ctx.signal.aborted).toBe(true);
    expect(reason(ctx.signal).rawMessage).toBe('operation was cancelled');
  });

  it('aborts with DEADLINE_EXCEEDED when the deadline passes, and clears its timer when the call finishes', () => {
    vi.useFakeTimers();
    const { ctx } = fakeCall(Date.now() + 50);
    const signal = ctx.signal;
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(49);
    expect(signal.aborted).toBe(false);
    vi.advanceTimersByTime(2);
    expect(reason(signal).code).toBe(Code.DeadlineExceeded);

    const second = fakeCall(Date.now() + 50);
    void second.ctx.signal;
    second.ctx.finish();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('is already aborted when first read after the deadline passed, or after the call finished', () => {
    vi.useFakeTimers();
    const late = fakeCall(Date.now() - 1);
    expect(reason(late.ctx.signal).code).toBe(Code.DeadlineExceeded);
    const done = fakeCall();
    done.ctx.finish();
    expect(done.ctx.signal.aborted).toBe(true);
    expect(done.call.listenerCount('cancelled')).toBe(0);
  });

  it('reports the time left before the deadline, and none without one', () => {
    expect(fakeCall().ctx.timeoutMs()).toBeUndefined();
    const left = fakeCall(Date.now() + 10_000).ctx.timeoutMs()!;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(10_000);
  });

  it('makes response headers and trailers only when a handler asks for them', () => {
    const { ctx } = fakeCall();
    expect(ctx.writtenHeader()).toBeUndefined();
    expect(ctx.writtenTrailer()).toBeUndefined();
    ctx.responseHeader.set('x-a', '1');
    ctx.responseTrailer.set('x-b', '2');
    expect(ctx.writtenHeader()?.get('x-a')).toBe('1');
    expect(ctx.writtenTrailer()?.get('x-b')).toBe('2');
  });
});

describe('grpc-adapter cancellation over the wire', () => {
  async function serve(introspect: (req: unknown, ctx: HandlerContext) => unknown) {
    const server = new Server();
    const logger = { error: () => undefined } as never;
    addGrpcService(server, service, { introspect, getJwks: () => ({}) }, logger);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return { server, client: grpcClient(service, port) };
  }

  /** A handler that waits for its signal and reports why it was aborted. */
  function waitingHandler() {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let aborted!: (e: ConnectError) => void;
    const reasonSeen = new Promise<ConnectError>((r) => (aborted = r));
    const introspect = (_req: unknown, ctx: HandlerContext) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted(ConnectError.from(ctx.signal.reason));
          resolve({ active: false });
        });
        started();
      });
    return { introspect, running, reasonSeen };
  }

  function call(client: ReturnType<typeof grpcClient>, options: object = {}) {
    let done!: (e: ServiceError | null) => void;
    const finished = new Promise<ServiceError | null>((r) => (done = r));
    const c = (client as unknown as Record<string, Function>).introspect!.call(client, { token: 't' }, new Metadata(), options, (e: ServiceError | null) => done(e));
    return { c: c as { cancel(): void }, finished };
  }

  it('aborts the signal of a running handler when the client cancels', async () => {
    const h = waitingHandler();
    const { server, client } = await serve(h.introspect);
    try {
      const { c, finished } = call(client);
      await h.running;
      c.cancel();
      expect((await h.reasonSeen).code).toBe(Code.Canceled);
      expect((await finished)?.code).toBe(Code.Canceled);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });

  it('aborts the signal of a running handler when the client deadline passes', async () => {
    const h = waitingHandler();
    const { server, client } = await serve(h.introspect);
    try {
      const { finished } = call(client, { deadline: Date.now() + 300 });
      await h.running;
      const why = await h.reasonSeen;
      // grpc-js may notice the deadline first and cancel the call; either way the handler is stopped.
      expect([Code.DeadlineExceeded, Code.Canceled]).toContain(why.code);
      expect((await finished)?.code).toBe(Code.DeadlineExceeded);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
