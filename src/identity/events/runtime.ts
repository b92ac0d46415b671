import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../../shared/config.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { LocalEventPublisher } from './local-publisher.js';
import { connectEvents, type EventsConnection } from './nats.js';
import { OutboxRelay, type EventPublisher } from './relay.js';
import { LocalRevocationBus, NatsRevocationBus, type RevocationBus } from './revocation-bus.js';

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
}

type EventsConfig = Pick<Config, 'NATS_URL' | 'EVENTS_STREAM' | 'EVENTS_SUBJECT_PREFIX'>;

/**
 * Wires the outbox relay to JetStream when NATS_URL is set, or to the in-process publisher and
 * bus otherwise; both modes run the same relay, so a single instance behaves like production.
 */
export async function startEvents(config: EventsConfig, deps: EventsDeps): Promise<EventsRuntime> {
  const subjectPrefix = config.EVENTS_SUBJECT_PREFIX;
  const logger = deps.logger.child({ component: 'events' });

  if (config.NATS_URL === undefined) {
    const bus = new LocalRevocationBus(logger);
    const publisher = new LocalEventPublisher({ logger, revocationBus: bus, subjectPrefix });
    const relay = new OutboxRelay({ orm: deps.orm, publisher, logger, clock: deps.clock, subjectPrefix });
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

  const nats = await connectEvents({ url: config.NATS_URL, logger, streamName: config.EVENTS_STREAM, subjectPrefix });
  try {
    await nats.ensureStream();
    const bus = await NatsRevocationBus.subscribe({ nc: nats.nc, logger, subjectPrefix });
    const relay = new OutboxRelay({ orm: deps.orm, publisher: nats.publisher, logger, clock: deps.clock, subjectPrefix });
    relay.start();
    return {
      relay,
      bus,
      publisher: nats.publisher,
      nats,
      async stop() {
        await relay.stop();
        await bus.close();
        await nats.close();
      },
    };
  } catch (err) {
    await nats.close();
    throw err;
  }
}
