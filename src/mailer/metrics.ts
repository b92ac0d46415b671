import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface MailerMetrics {
  registry: Registry;
  sent: Counter<'event'>;
  failures: Counter<'class'>;
  deadLetters: Counter<'reason'>;
  skipped: Counter<'reason'>;
  inFlight: Gauge;
}

/** Labels are fixed words (event names, failure classes), never addresses or links. */
export function createMailerMetrics(): MailerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    sent: new Counter({ name: 'latch_mailer_sent_total', help: 'Mails accepted by the SMTP server (or printed), by event', labelNames: ['event'], registers: [registry] }),
    failures: new Counter({ name: 'latch_mailer_send_failures_total', help: 'Failed send attempts, by class (temporary: retried later; permanent: dead-lettered)', labelNames: ['class'], registers: [registry] }),
    deadLetters: new Counter({ name: 'latch_mailer_dead_letters_total', help: 'Events published to the mail dead-letter subject, by reason', labelNames: ['reason'], registers: [registry] }),
    skipped: new Counter({
      name: 'latch_mailer_skipped_total',
      help: 'Events acked without a mail: duplicate (a redelivery this process had already mailed), expired (a reset link past its expiry)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    inFlight: new Gauge({ name: 'latch_mailer_in_flight', help: 'Mails being sent now', registers: [registry] }),
  };
}
