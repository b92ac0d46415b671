import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import {
  PasswordResetRequestedSchema,
  SecurityAlertKind,
  SecurityAlertSchema,
} from '../../src/gen/identity/events/v1/events_pb.js';
import { mailerConfigSchema, type MailerConfig } from '../../src/shared/config.js';
import { EventName, streamSubjects, subjectFor } from '../../src/shared/event-subjects.js';

/** What the SMTP server answers to one DATA: accept, or an SMTP error code. */
export type SmtpAnswer = 'accept' | { code: number; message: string };

/**
 * A real SMTP server in this process (smtp-server), parsing every accepted mail with mailparser.
 * `answer` decides per attempt; `hold` keeps DATA unanswered until released.
 */
export class TestSmtpServer {
  readonly mails: ParsedMail[] = [];
  attempts = 0;
  answer: (attempt: number, mail: ParsedMail) => SmtpAnswer = () => 'accept';
  hold: Promise<void> | undefined;
  /** Time each DATA takes to answer, so a batch is still in flight when a test interrupts it. */
  delayMs = 0;
  /** Called when a DATA arrives, before it is answered. */
  onAttempt: () => void = () => {};

  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
  ) {}

  static async start(): Promise<TestSmtpServer> {
    let self: TestSmtpServer | undefined;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        const s = self!;
        const attempt = ++s.attempts;
        s.onAttempt();
        simpleParser(stream).then(
          async (mail) => {
            if (s.hold) await s.hold;
            if (s.delayMs > 0) await new Promise((r) => setTimeout(r, s.delayMs));
            const answer = s.answer(attempt, mail);
            if (answer === 'accept') {
              s.mails.push(mail);
              callback();
            } else {
              callback(Object.assign(new Error(answer.message), { responseCode: answer.code }));
            }
          },
          (err: Error) => callback(err),
        );
      },
    });
    // A client killed mid-session resets its connection; that is the point of some tests.
    server.on('error', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    self = new TestSmtpServer(server, (server.server.address() as AddressInfo).port);
    return self;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  eventIds(): string[] {
    return this.mails.map((m) => String(m.headers.get('x-latch-event-id') ?? ''));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Creates the test's own stream, as the identity process would. */
export async function createStream(nc: NatsConnection, streamName: string, subjectPrefix: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: streamName,
    subjects: [streamSubjects(subjectPrefix)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
  });
}

export function mailerTestConfig(overrides: Record<string, string>): MailerConfig {
  return mailerConfigSchema.parse({
    NODE_ENV: 'test',
    MAILER_HTTP_PORT: '0',
    MAILER_BACKOFF_MS: '100',
    MAILER_MAX_BACKOFF_MS: '400',
    SMTP_TIMEOUT_MS: '2000',
    MAIL_FROM: 'Latch <no-reply@latch.test>',
    ...overrides,
  });
}

export function securityAlertPayload(eventId: string, overrides: Partial<{ kind: SecurityAlertKind; email: string; clientIp: string; userAgent: string; occurredAtMs: number }> = {}): Uint8Array {
  return toBinary(
    SecurityAlertSchema,
    create(SecurityAlertSchema, {
      eventId,
      userId: 'user-1',
      email: overrides.email ?? 'ada@example.com',
      kind: overrides.kind ?? SecurityAlertKind.PASSWORD_CHANGED,
      occurredAt: timestampFromMs(overrides.occurredAtMs ?? Date.UTC(2026, 10, 27, 20, 15)),
      clientIp: overrides.clientIp ?? '203.0.113.7',
      userAgent: overrides.userAgent ?? 'Firefox/140',
    }),
  );
}

export function passwordResetPayload(eventId: string, resetUrl: string, expiresAtMs: number): Uint8Array {
  return toBinary(
    PasswordResetRequestedSchema,
    create(PasswordResetRequestedSchema, { eventId, userId: 'user-1', email: 'ada@example.com', resetUrl, expiresAt: timestampFromMs(expiresAtMs) }),
  );
}

/** Publishes as the outbox relay does: the event id is the Nats-Msg-Id. */
export async function publishEvent(nc: NatsConnection, subjectPrefix: string, name: EventName, payload: Uint8Array, eventId: string): Promise<void> {
  await jetstream(nc).publish(subjectFor(name, subjectPrefix), payload, { msgID: eventId });
}

export async function natsConnection(url: string): Promise<NatsConnection> {
  return connect({ servers: url });
}

/** The value of a counter (summed over the given label values) from a Prometheus text page. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries((m[2] ?? '').split(',').filter(Boolean).map((kv) => {
      const [k, v] = kv.split('=');
      return [k!, v!.replace(/^"|"$/g, '')];
    }));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}
