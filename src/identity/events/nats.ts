import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection, type Status } from '@nats-io/transport-node';
import type { Logger } from '../../shared/logger.js';
import type { EventPublisher } from './relay.js';
import { DEFAULT_STREAM_NAME, DEFAULT_SUBJECT_PREFIX, streamSubjects } from './subjects.js';

export interface ConnectEventsOptions {
  url: string;
  logger: Logger;
  streamName?: string;
  subjectPrefix?: string;
  /** Client name shown by the server (`nats server report connections`). */
  name?: string;
  /** How long one publish waits for the JetStream ack before the relay counts it as failed. */
  publishTimeoutMs?: number;
  /** Delay between reconnect attempts; there is no limit on their number. */
  reconnectTimeWaitMs?: number;
  /** JetStream drops a re-published Nats-Msg-Id seen within this window. */
  duplicateWindowMs?: number;
  /** Events older than this are dropped from the stream. */
  maxAgeMs?: number;
}

export interface EventsConnection {
  nc: NatsConnection;
  publisher: EventPublisher;
  streamName: string;
  subjectPrefix: string;
  /** Creates the stream, or brings an existing one to this configuration. */
  ensureStream(): Promise<void>;
  /** Drains (pending publishes flush) and closes the connection. */
  close(): Promise<void>;
}

export async function connectEvents(options: ConnectEventsOptions): Promise<EventsConnection> {
  const { logger } = options;
  const streamName = options.streamName ?? DEFAULT_STREAM_NAME;
  const subjectPrefix = options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  const publishTimeoutMs = options.publishTimeoutMs ?? 2_000;

  const nc = await connect({
    servers: options.url,
    name: options.name ?? 'latch-identity',
    // Never give up: while NATS is away the outbox keeps the events and the relay retries.
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 1_000,
    // Otherwise every request (each publish waits for the stream's ack) first builds an Error to
    // keep its caller's stack, a cost paid per event for a stack no log line shows.
    noAsyncTraces: true,
  });
  logger.info({ server: nc.getServer() }, 'nats: connected');
  const statusDone = logStatus(nc, logger);

  const js = jetstream(nc);
  const publisher: EventPublisher = {
    async publish(subject, payload, msgId) {
      const ack = await js.publish(subject, payload, { msgID: msgId, timeout: publishTimeoutMs });
      if (ack.duplicate) logger.debug({ eventId: msgId, subject }, 'nats: duplicate publish dropped by the stream');
    },
  };

  async function ensureStream(): Promise<void> {
    const jsm = await jetstreamManager(nc);
    const config = {
      subjects: [streamSubjects(subjectPrefix)],
      duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
      max_age: nanos(options.maxAgeMs ?? 7 * 24 * 3_600_000),
    };
    try {
      await jsm.streams.info(streamName);
      await jsm.streams.update(streamName, config);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      // Two replicas may race here; adding an identical stream twice is accepted by the server.
      await jsm.streams.add({
        name: streamName,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        ...config,
      });
      logger.info({ stream: streamName }, 'nats: stream created');
    }
  }

  async function close(): Promise<void> {
    if (!nc.isClosed()) {
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    }
    await statusDone;
  }

  return { nc, publisher, streamName, subjectPrefix, ensureStream, close };
}

/** Logs connection changes; the iterator ends when the connection closes. */
async function logStatus(nc: NatsConnection, logger: Logger): Promise<void> {
  for await (const s of nc.status() as AsyncIterable<Status>) {
    switch (s.type) {
      case 'disconnect':
        logger.warn({ server: s.server }, 'nats: disconnected, events wait in the outbox');
        break;
      case 'reconnect':
        logger.info({ server: s.server }, 'nats: reconnected');
        break;
      case 'error':
        logger.warn({ err: `${s.error.name}: ${s.error.message}` }, 'nats: server error');
        break;
      case 'ldm':
        logger.info({ server: s.server }, 'nats: server entering lame duck mode');
        break;
      case 'reconnecting':
      case 'ping':
        break;
      default:
        logger.debug({ status: s.type }, 'nats: status');
    }
  }
}
