import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import type { MailerConfig } from '../shared/config.js';
import { mailDeadLetterSubject } from '../shared/event-subjects.js';
import type { Logger } from '../shared/logger.js';
import { ensureMailConsumer, mailConsumerName } from './consumer.js';
import { MAIL_EVENTS } from './decode.js';
import { startMailerHttpServer } from './http-server.js';
import { createMailerMetrics, type MailerMetrics } from './metrics.js';
import { createMailTransport } from './transport.js';
import { MailWorker } from './worker.js';

export interface MailerApp {
  /** The bound MAILER_HTTP_PORT (0 in the config picks a free one). */
  httpPort: number;
  metrics: MailerMetrics;
  ready(): boolean;
  /** Stops pulling, finishes the sends in flight, acks them, closes NATS, SMTP and HTTP. */
  stop(): Promise<void>;
}

export interface MailerDeps {
  logger: Logger;
  /** Where the development delivery (no SMTP_URL) prints mail; process.stdout by default. */
  stdout?: NodeJS.WritableStream;
}

export async function startMailer(config: MailerConfig, deps: MailerDeps): Promise<MailerApp> {
  const { logger } = deps;
  if (config.NATS_URL === undefined) throw new Error('NATS_URL is required'); // the schema says so too
  const metrics = createMailerMetrics();
  const transport = createMailTransport(config, deps.stdout);
  if (transport.kind === 'stdout') logger.warn('mailer: SMTP_URL is unset, mail is printed to stdout (development only)');

  const nc: NatsConnection = await connect({
    servers: config.NATS_URL,
    name: 'latch-mailer',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    // Otherwise every request, and so every ack the worker waits for, first builds an Error to
    // keep its caller's stack: about 4% of the process's CPU per mail, for a stack no log shows.
    noAsyncTraces: true,
  });
  let connected = true;
  const statusDone = (async () => {
    for await (const s of nc.status() as AsyncIterable<Status>) {
      if (s.type === 'disconnect') {
        connected = false;
        logger.warn('mailer: NATS disconnected');
      } else if (s.type === 'reconnect') {
        connected = true;
        logger.info('mailer: NATS reconnected');
      }
    }
  })();
  logger.info({ server: nc.getServer(), stream: config.EVENTS_STREAM, consumer: config.MAILER_CONSUMER_NAME }, 'mailer: connected to NATS');

  const js = jetstream(nc);
  // One worker per mail event, each on its own durable consumer (consumer.ts says why).
  const workers = MAIL_EVENTS.map((event) => {
    const settings = {
      streamName: config.EVENTS_STREAM,
      consumerName: config.MAILER_CONSUMER_NAME,
      event,
      subjectPrefix: config.EVENTS_SUBJECT_PREFIX,
      // A send that hangs is cut by the SMTP timeouts; meanwhile the worker marks it as working.
      ackWaitMs: config.SMTP_TIMEOUT_MS * 3,
      maxAckPending: 1000,
    };
    return new MailWorker({
      js,
      flush: () => nc.flush(),
      consumer: async () => {
        const jsm = await jetstreamManager(nc);
        await ensureMailConsumer(jsm, settings);
        return js.consumers.get(settings.streamName, mailConsumerName(settings.consumerName, event));
      },
      transport,
      metrics,
      logger: logger.child({ consumer: mailConsumerName(settings.consumerName, event) }),
      subjectPrefix: config.EVENTS_SUBJECT_PREFIX,
      deadLetterSubject: mailDeadLetterSubject(config.EVENTS_SUBJECT_PREFIX),
      concurrency: config.MAILER_CONCURRENCY,
      maxDeliver: config.MAILER_MAX_DELIVER,
      backoffMs: config.MAILER_BACKOFF_MS,
      maxBackoffMs: config.MAILER_MAX_BACKOFF_MS,
      workingIntervalMs: config.SMTP_TIMEOUT_MS,
    });
  });

  const ready = () => connected && workers.every((w) => w.consuming);
  let http;
  try {
    http = await startMailerHttpServer({ host: config.MAILER_BIND_ADDRESS, port: config.MAILER_HTTP_PORT, registry: metrics.registry, ready });
  } catch (err) {
    await nc.close();
    throw err;
  }
  for (const w of workers) w.start();
  logger.info({ httpPort: http.port, delivery: transport.kind }, 'mailer: started');

  let stopping: Promise<void> | undefined;
  async function stop(): Promise<void> {
    await Promise.all(workers.map((w) => w.stop()));
    transport.close();
    // Flushes the acks of the last sends before the connection closes.
    await nc.drain().catch(() => nc.close());
    await statusDone;
    await http!.close();
    logger.info('mailer: stopped');
  }
  return {
    httpPort: http.port,
    metrics,
    ready,
    stop: () => (stopping ??= stop()),
  };
}
