import nodemailer from 'nodemailer';
import type { MailerConfig } from '../shared/config.js';
import type { RenderedMail } from './render/mail.js';

/** Sends one mail; rejects with the transport's error, which classifyFailure reads. */
export interface MailTransport {
  readonly kind: 'smtp' | 'stdout';
  send(mail: RenderedMail, eventId: string): Promise<void>;
  close(): void;
}

export type FailureClass = 'temporary' | 'permanent';

/**
 * SMTP replies 5xx are permanent (the server refuses this mail and will refuse it again); 4xx
 * replies, connection errors and timeouts are temporary. A refused login (535) is counted as
 * temporary: it is the operator's configuration, not the mail, that is wrong, and the mail must
 * wait for the fix rather than be dead-lettered.
 */
export function classifyFailure(err: unknown): FailureClass {
  const e = err as { responseCode?: unknown; code?: unknown };
  if (e?.code === 'EAUTH') return 'temporary';
  return typeof e?.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600 ? 'permanent' : 'temporary';
}

/** What may be logged about a failure: the SMTP code and class, never the mail. */
export function describeFailure(err: unknown): { code?: string; responseCode?: number; message: string } {
  const e = err as { responseCode?: unknown; code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message.slice(0, 300) : String(err).slice(0, 300);
  return {
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(typeof e?.responseCode === 'number' ? { responseCode: e.responseCode } : {}),
    message,
  };
}

/** The settings a transport reads; the identity process passes its own config in in-process mode. */
export type MailTransportConfig = Pick<MailerConfig, 'SMTP_URL' | 'SMTP_TIMEOUT_MS' | 'MAIL_FROM' | 'MAILER_CONCURRENCY'>;

export function createMailTransport(config: MailTransportConfig, stdout: NodeJS.WritableStream = process.stdout): MailTransport {
  if (config.SMTP_URL === undefined) return stdoutTransport(config.MAIL_FROM, stdout);
  const transporter = nodemailer.createTransport({
    url: config.SMTP_URL,
    pool: true,
    maxConnections: config.MAILER_CONCURRENCY,
    connectionTimeout: config.SMTP_TIMEOUT_MS,
    greetingTimeout: config.SMTP_TIMEOUT_MS,
    socketTimeout: config.SMTP_TIMEOUT_MS,
    dnsTimeout: config.SMTP_TIMEOUT_MS,
    // nodemailer would otherwise log through its own logger; failures are logged by the worker.
    logger: false,
  });
  return {
    kind: 'smtp',
    async send(mail, eventId) {
      await transporter.sendMail({
        from: config.MAIL_FROM,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        // Lets a reader (and the tests) tie a mail to its event; carries no secret.
        headers: { 'X-Latch-Event-Id': eventId },
      });
    },
    close() {
      transporter.close();
    },
  };
}

/**
 * Development delivery without SMTP_URL: the mail is printed to stdout, reset link included,
 * because that is how a developer receives it. Production refuses to start without SMTP_URL.
 */
function stdoutTransport(from: string, out: NodeJS.WritableStream): MailTransport {
  return {
    kind: 'stdout',
    async send(mail, eventId) {
      out.write(
        `----- mail (SMTP_URL unset: printed instead of sent) -----\nFrom: ${from}\nTo: ${mail.to}\nSubject: ${mail.subject}\nX-Latch-Event-Id: ${eventId}\n\n${mail.text}----- end of mail -----\n`,
      );
    },
    close() {},
  };
}
