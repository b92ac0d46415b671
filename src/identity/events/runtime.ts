import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../../shared/config.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { LocalEventPublisher, type MailSink } from './local-publisher.js';
import { connectEvents, type EventsConnection } from './nats.js';
import { OutboxRelay, type EventPublisher } from './relay.js';
import { DeferredRevocationBus, LocalRevocationBus, NatsRevocationBus, type RevocationBus } from './revocation-bus.js';

export interface EventsRuntime {
  relay: OutboxRelay;
  bus: RevocationBus;
  publisher: EventPublisher;
  /** Undefined in in-process mode (no NATS_URL). */
  nats: EventsConnection | undefined;
  /** Publishes the batch in flight, then unsubscribes and drains the connection. */
  stop(): Promise<void>;
}

export interface EventsDeps {
  orm: MikroORM;
  logger: Logger;
  clock: Clock;
  /** In-process mode only: delivers the mail events (the NATS mode leaves them to the mailer process). */
  mail?: MailSink;
}

type EventsConfig = Pick<Config, 'NATS_URL' | 'EVENTS_STREAM' | 'EVENTS_SUBJECT_PREFIX'>;

/** How long start-up waits for a first NATS connection before serving without it. */
const FIRST_CONNECT_WAIT_MS = 5_000;

/**
 * Wires the outbox relay to JetStream when NATS_URL is set, or to the in-process publisher and
 * bus otherwise; both modes run the same relay, so a single instance behaves like production.
 */
export async function startEvents(config: EventsConfig, deps: EventsDeps): Promise<EventsRuntime> {
  const subjectPrefix = config.EVENTS_SUBJECT_PREFIX;
  const logger = deps.logger.child({ component: 'events' });

  if (config.NATS_URL === undefined) {
    const bus = new LocalRevocationBus(logger);
    const publisher = new LocalEventPublisher({ logger, revocationBus: bus, subjectPrefix, ...(deps.mail ? { mail: deps.mail } : {}) });
    // A mail the SMTP server will not take yet must not hold back the revocations behind it.
    const relay = new OutboxRelay({ orm: deps.orm, publisher, logger, clock: deps.clock, subjectPrefix, holdBatchOnFailure: false });
    relay.start();
    logger.info('events: NATS_URL unset, events are handled in-process');
    return {
      relay,
      bus,
      publisher,
      nats: undefined,
      async stop() {
        await relay.stop();
        await bus.close();
      },
    };
  }

  // The broker may be away at start-up: sign-in must not depend on it. Until the first connection
  // the relay's publishes fail (events wait in the outbox) and the bus is not live (caches read
  // through). Start-up waits a moment so that, normally, everything is wired before serving.
  const bus = new DeferredRevocationBus(logger);
  let nats: EventsConnection | undefined;
  let stopped = false;
  const publisher: EventPublisher = {
    publish(subject, payload, msgId) {
      if (nats === undefined) return Promise.reject(new Error('not connected to NATS yet'));
      return nats.publisher.publish(subject, payload, msgId);
    },
  };
  const relay = new OutboxRelay({ orm: deps.orm, publisher, logger, clock: deps.clock, subjectPrefix });
  relay.start();

  const connected = (async () => {
    for (let delayMs = 500; !stopped; delayMs = Math.min(delayMs * 2, 10_000)) {
      let conn: EventsConnection | undefined;
      try {
        conn = await connectEvents({ url: config.NATS_URL!, logger, streamName: config.EVENTS_STREAM, subjectPrefix });
        await conn.ensureStream();
        const real = await NatsRevocationBus.subscribe({ nc: conn.nc, logger, subjectPrefix });
        if (stopped) {
          await real.close();
          await conn.close();
          return;
        }
        nats = conn;
        bus.attach(real);
        relay.kick();
        return;
      } catch (err) {
        await conn?.close().catch(() => undefined);
        logger.warn({ err: err instanceof Error ? err.message : String(err), retryInMs: delayMs }, 'events: NATS unavailable, retrying; events wait in the outbox');
        await new Promise((r) => setTimeout(r, delayMs).unref());
      }
    }
  })();
  await Promise.race([connected, new Promise((r) => setTimeout(r, FIRST_CONNECT_WAIT_MS).unref())]);

  return {
    relay,
    bus,
    publisher,
    get nats() {
      return nats;
    },
    async stop() {
      stopped = true;
      await relay.stop();
      await bus.close();
      await nats?.close();
    },
  };
}
