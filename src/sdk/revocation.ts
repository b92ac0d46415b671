import { fromBinary } from '@bufbuild/protobuf';
import type { NatsConnection, Status, Subscription } from '@nats-io/transport-node';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { SessionsRevokedSchema } from '../gen/identity/events/v1/events_pb.js';

/**
 * Latch's default subject prefix (its EVENTS_SUBJECT_PREFIX); the broadcast travels on
 * `<prefix>.sessions_revoked` as a core NATS message carrying identity.events.v1.SessionsRevoked.
 */
export const DEFAULT_EVENTS_SUBJECT_PREFIX = 'identity.events';

export interface RevocationFeedOptions {
  /** A connection from @nats-io/transport-node, owned by the caller (not closed by the SDK). */
  connection: NatsConnection;
  /** Must match Latch's EVENTS_SUBJECT_PREFIX; default "identity.events". */
  subjectPrefix?: string;
}

export interface RevocationHandlers {
  /** `sessionId` undefined: every session of the user; set: that one session. */
  revoked(userId: string, notBeforeMs: number, sessionId?: string): void;
  /** Revocations sent while not live are lost (core NATS keeps nothing). */
  live(live: boolean): void;
}

/** Listens to `<prefix>.sessions_revoked`; live once the server has confirmed the subscription. */
export class RevocationFeed {
  private readonly sub: Subscription;
  private readonly watching: Promise<void>;
  private status: AsyncIterable<Status> & { stop(): void };
  private generation = 0;
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    subject: string,
    private readonly h: RevocationHandlers,
  ) {
    this.status = nc.status() as AsyncIterable<Status> & { stop(): void };
    this.watching = this.watch();
    this.sub = nc.subscribe(subject, { callback: (err, msg) => (err ? undefined : this.receive(msg.data)) });
  }

  static async start(o: RevocationFeedOptions, h: RevocationHandlers): Promise<RevocationFeed> {
    const feed = new RevocationFeed(o.connection, `${o.subjectPrefix ?? DEFAULT_EVENTS_SUBJECT_PREFIX}.sessions_revoked`, h);
    h.live(false);
    await feed.confirm(feed.generation);
    return feed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.h.live(false);
    this.status.stop();
    if (!this.nc.isClosed() && !this.sub.isClosed()) this.sub.unsubscribe();
    await this.watching;
  }

  private receive(data: Uint8Array): void {
    try {
      const e = fromBinary(SessionsRevokedSchema, data);
      if (e.userId) this.h.revoked(e.userId, e.notBefore ? timestampMs(e.notBefore) : Date.now(), e.sessionId || undefined);
    } catch {
      // not a SessionsRevoked message: nothing to drop
    }
  }

  private async watch(): Promise<void> {
    for await (const s of this.status) {
      if (s.type === 'disconnect' || s.type === 'staleConnection' || s.type === 'close') {
        this.generation++;
        this.h.live(false);
      } else if (s.type === 'reconnect') {
        void this.confirm(this.generation);
      }
    }
  }

  private async confirm(generation: number): Promise<void> {
    try {
      await this.nc.flush();
    } catch {
      return;
    }
    if (generation === this.generation && !this.closed && !this.nc.isClosed()) this.h.live(true);
  }
}
