import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureMailConsumer, mailConsumerName } from '../../src/mailer/consumer.js';
import { createMailerMetrics } from '../../src/mailer/metrics.js';
import type { RenderedMail } from '../../src/mailer/render/mail.js';
import type { MailTransport } from '../../src/mailer/transport.js';
import { MailWorker } from '../../src/mailer/worker.js';
import { EventName, mailDeadLetterSubject } from '../../src/shared/event-subjects.js';
import { capturingLogger, deleteStream, randomStream, waitFor } from '../events/support.js';
import { describeWithNats, services } from '../helpers/services.js';
import { createStream, natsConnection, publishEvent, securityAlertPayload } from './support.js';

/**
 * A message's slot stays taken until the server has read its ack: that is what bounds the mails a
 * crash can repeat to MAILER_CONCURRENCY. The connection's flush is replaced by a gate the test
 * opens, so "the server has not confirmed yet" lasts as long as the test wants.
 */
describeWithNats('mailer worker: a slot is freed only once the ack is confirmed', () => {
  const natsUrl = services().natsUrl!;
  const streams: string[] = [];
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await natsConnection(natsUrl);
  });

  afterAll(async () => {
    await nc?.close();
    for (const name of streams) await deleteStream(natsUrl, name);
  });

  async function worker(flush: () => Promise<void>) {
    const { streamName, subjectPrefix } = randomStream();
    streams.push(streamName);
    await createStream(nc, streamName, subjectPrefix);
    const settings = {
      streamName,
      consumerName: `ack-test-${randomUUID().slice(0, 8)}`,
      event: EventName.securityAlert,
      subjectPrefix,
      ackWaitMs: 30_000,
      maxAckPending: 100,
    };
    const sent: string[] = [];
    const transport: MailTransport = {
      kind: 'smtp',
      async send(_mail: RenderedMail, eventId: string) {
        sent.push(eventId);
      },
      close() {},
    };
    const log = capturingLogger('debug');
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const w = new MailWorker({
      js,
      flush,
      consumer: async () => {
        await ensureMailConsumer(jsm, settings);
        return js.consumers.get(streamName, mailConsumerName(settings.consumerName, settings.event));
      },
      transport,
      metrics: createMailerMetrics(),
      logger: log.logger,
      subjectPrefix,
      deadLetterSubject: mailDeadLetterSubject(subjectPrefix),
      concurrency: 1,
      maxDeliver: 5,
      backoffMs: 100,
      maxBackoffMs: 400,
      workingIntervalMs: 10_000,
    });
    const publish = async () => {
      const id = randomUUID();
      await publishEvent(nc, subjectPrefix, EventName.securityAlert, securityAlertPayload(id), id);
      return id;
    };
    return { w, sent, publish, log };
  }

  it('with one slot, the next mail waits until the server has confirmed the previous ack', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let flushes = 0;
    const { w, sent, publish } = await worker(() => {
      flushes++;
      return gate;
    });
    const first = await publish();
    const second = await publish();
    w.start();
    try {
      await waitFor(() => sent.length === 1 && flushes === 1);
      // Sent and acked, but not confirmed: the one slot is still taken.
      await new Promise((r) => setTimeout(r, 500));
      expect(sent).toEqual([first]);
      open();
      await waitFor(() => sent.length === 2);
      expect(sent).toEqual([first, second]);
    } finally {
      open();
      await w.stop();
    }
  });

  it('a confirmation that fails (connection lost) is logged and does not stop the worker', async () => {
    const { w, sent, publish, log } = await worker(() => Promise.reject(new Error('connection lost')));
    const ids = [await publish(), await publish()];
    w.start();
    try {
      await waitFor(() => sent.length === 2);
      expect(sent).toEqual(ids);
      await waitFor(() => log.lines().filter((l) => l.msg === 'mailer: ack not confirmed').length === 2);
    } finally {
      await w.stop();
    }
  });
});
