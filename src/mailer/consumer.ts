import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { subjectFor, type EventName } from '../shared/event-subjects.js';

export interface MailConsumerSettings {
  streamName: string;
  /** MAILER_CONSUMER_NAME; each mail event gets its own durable consumer under it. */
  consumerName: string;
  event: EventName;
  subjectPrefix: string;
  /** A delivery not acked (nor marked working) within this time is handed out again. */
  ackWaitMs: number;
  /** Upper bound on unacked deliveries across every replica. */
  maxAckPending: number;
}

/**
 * One durable consumer per mail event, each filtered on that event's subject: a consumer with
 * several filter subjects needs NATS 2.10, and one filtered on the whole prefix would be handed
 * every revocation (and the dead letters) only to ack them.
 */
export function mailConsumerName(base: string, event: EventName): string {
  return `${base}-${event}`;
}

/**
 * Creates a durable pull consumer shared by every mailer replica, or brings it to these
 * settings. `max_deliver` is unlimited on purpose: when JetStream gives up on a message it drops
 * it without telling the consumer, so the mailer counts deliveries itself and dead-letters the
 * message (MAILER_MAX_DELIVER) instead. Throws JetStreamApiError StreamNotFound while the
 * identity process has not created the stream yet; the caller retries.
 */
export async function ensureMailConsumer(jsm: JetStreamManager, s: MailConsumerSettings): Promise<void> {
  const settings = {
    filter_subject: subjectFor(s.event, s.subjectPrefix),
    ack_wait: nanos(s.ackWaitMs),
    max_ack_pending: s.maxAckPending,
    max_deliver: -1,
  };
  const name = mailConsumerName(s.consumerName, s.event);
  try {
    await jsm.consumers.info(s.streamName, name);
    await jsm.consumers.update(s.streamName, name, settings);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    // Replicas starting together may both add it; the server accepts an identical add.
    await jsm.consumers.add(s.streamName, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...settings,
    });
  }
}

export function isStreamMissing(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}
