import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import type { Msg, NatsConnection, QueuedIterator, Status, Subscription } from '@nats-io/transport-node';
import { SessionsRevokedSchema } from '../../gen/identity/events/v1/events_pb.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { DEFAULT_SUBJECT_PREFIX, EventName, subjectFor } from './subjects.js';

/** `sessionId` undefined: every token of the user issued before `notBeforeMs`; set: that session's tokens. */
export type RevocationListener = (userId: string, notBeforeMs: number, sessionId?: string) => void;

/**
 * Tells this process that a user's tokens issued before `notBeforeMs`, or those of one of the
 * user's sessions, are revoked (docs/security.md I4, R8). A cache may trust its entries only while the bus is live; otherwise it reads through to
 * the database, so the revocation bound holds even while the broker is away.
 */
export interface RevocationBus {
  onRevoked(listener: RevocationListener): void;
  /** True only while revocations are being received. */
  isLive(): boolean;
  /**
   * Told on every change of isLive(). Revocations sent while the bus was not live were missed
   * (core NATS keeps nothing), so on a return to live a cache should drop what it holds.
   */
  onLiveChange?(listener: (live: boolean) => void): void;
  close(): Promise<void>;
}

/** Listener bookkeeping shared by both buses; one listener's failure never starves the others. */
export abstract class BaseBus {
  private readonly revokedListeners: RevocationListener[] = [];
  private readonly liveListeners: ((live: boolean) => void)[] = [];

  constructor(protected readonly logger: Logger) {}

  onRevoked(listener: RevocationListener): void {
    this.revokedListeners.push(listener);
  }

  onLiveChange(listener: (live: boolean) => void): void {
    this.liveListeners.push(listener);
  }

  protected emitRevoked(userId: string, notBeforeMs: number, sessionId?: string): void {
    for (const listener of this.revokedListeners) {
      try {
        listener(userId, notBeforeMs, sessionId);
      } catch (err) {
        this.logger.error({ err, userId }, 'revocation listener failed');
      }
    }
  }

  protected emitLive(live: boolean): void {
    for (const listener of this.liveListeners) {
      try {
        listener(live);
      } catch (err) {
        this.logger.error({ err }, 'revocation liveness listener failed');
      }
    }
  }
}

export interface NatsRevocationBusOptions {
  nc: NatsConnection;
  logger: Logger;
  subjectPrefix?: string;
}

/**
 * Receives `sessions_revoked` over a core NATS subscription on the relay's subject: every replica
 * hears every revocation (no queue group) within milliseconds of the relay publishing it.
 */
export class NatsRevocationBus extends BaseBus implements RevocationBus {
  private live = false;
  private closed = false;
  /** Bumped on every disconnect so a slow confirmation of an older connection cannot win. */
  private generation = 0;
  private readonly status: QueuedIterator<Status>;
  private readonly statusDone: Promise<void>;
  private readonly sub: Subscription;

  private constructor(
    private readonly nc: NatsConnection,
    logger: Logger,
    subjectPrefix: string,
  ) {
    super(logger);
    this.status = nc.status() as QueuedIterator<Status>;
    this.statusDone = this.watch();
    this.sub = nc.subscribe(subjectFor(EventName.sessionsRevoked, subjectPrefix), {
      callback: (err, msg) => this.receive(err, msg),
    });
  }

  /** Resolves once the server has the subscription, so the bus is live on return. */
  static async subscribe(options: NatsRevocationBusOptions): Promise<NatsRevocationBus> {
    const bus = new NatsRevocationBus(options.nc, options.logger, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX);
    await bus.confirm(bus.generation);
    return bus;
  }

  isLive(): boolean {
    return this.live && !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.setLive(false);
    this.status.stop();
    if (!this.nc.isClosed() && !this.sub.isClosed()) this.sub.unsubscribe();
    await this.statusDone;
  }

  private receive(err: Error | null, msg: Msg): void {
    if (err) {
      this.logger.warn({ err: `${err.name}: ${err.message}` }, 'revocation bus: subscription error');
      return;
    }
    try {
      const event = fromBinary(SessionsRevokedSchema, msg.data);
      if (!event.userId || !event.notBefore) throw new Error('user_id or not_before missing');
      this.emitRevoked(event.userId, timestampMs(event.notBefore), event.sessionId || undefined);
    } catch (e) {
      this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'revocation bus: undecodable event dropped');
    }
  }

  private async watch(): Promise<void> {
    for await (const s of this.status) {
      if (s.type === 'disconnect' || s.type === 'staleConnection' || s.type === 'close') {
        this.generation++;
        this.setLive(false);
      } else if (s.type === 'reconnect') {
        // The client re-sends its subscriptions on reconnect; a flush round trip proves the
        // server has processed them before we call ourselves live again.
        void this.confirm(this.generation);
      }
    }
  }

  private async confirm(generation: number): Promise<void> {
    try {
      await this.nc.flush();
    } catch {
      return; // disconnected again; the next reconnect confirms
    }
    if (generation === this.generation && !this.closed && !this.nc.isClosed()) this.setLive(true);
  }

  private setLive(live: boolean): void {
    if (this.live === live) return;
    this.live = live;
    this.logger.info({ live }, live ? 'revocation bus: live' : 'revocation bus: not live, caches read through');
    this.emitLive(live);
  }
}

/**
 * The bus for a single process without NATS: the in-process event publisher delivers to it, so
 * it never misses anything and is always live.
 */
export class LocalRevocationBus extends BaseBus implements RevocationBus {
  private closed = false;

  constructor(logger: Logger = silentLogger) {
    super(logger);
  }

  isLive(): boolean {
    return !this.closed;
  }

  deliver(userId: string, notBeforeMs: number, sessionId?: string): void {
    if (!this.closed) this.emitRevoked(userId, notBeforeMs, sessionId);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * Stands in for the NATS bus until the first connection succeeds, so the service can start while
 * the broker is away: not live (caches read through) until a real bus is attached, then it
 * forwards everything the real bus reports.
 */
export class DeferredRevocationBus extends BaseBus implements RevocationBus {
  private real: RevocationBus | undefined;

  attach(real: RevocationBus): void {
    this.real = real;
    real.onRevoked((userId, notBeforeMs, sessionId) => this.emitRevoked(userId, notBeforeMs, sessionId));
    real.onLiveChange?.((live) => this.emitLive(live));
    if (real.isLive()) this.emitLive(true);
  }

  isLive(): boolean {
    return this.real?.isLive() ?? false;
  }

  async close(): Promise<void> {
    await this.real?.close();
  }
}
