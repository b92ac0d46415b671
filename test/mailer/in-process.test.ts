import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessMailer } from '../../src/mailer/in-process.js';
import { EventName, subjectFor } from '../../src/shared/event-subjects.js';
import { capturingLogger, waitFor } from '../events/support.js';
import { signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';
import { passwordResetPayload, securityAlertPayload, TestSmtpServer } from './support.js';

/**
 * The embedded default (no NATS_URL): the identity process runs the mailer's own decoding,
 * templates and transport in-process, fed by its outbox relay.
 */

const NEW_PASSWORD = 'amber-lighthouse-softly-4417';
const PREFIX = 'identity.events';
const config = { SMTP_URL: undefined, SMTP_TIMEOUT_MS: 2000, MAIL_FROM: 'Latch <no-reply@latch.test>', MAILER_CONCURRENCY: 1, EVENTS_SUBJECT_PREFIX: PREFIX };

function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

/** The reset links in printed mail, in order. */
function printedLinks(text: string, email: string): string[] {
  return text
    .split('----- end of mail -----')
    .filter((m) => m.includes(`To: ${email}\nSubject: Reset your password\n`))
    .flatMap((m) => [...m.matchAll(/^(https?:\/\/\S+[?&]token=\S+)$/gm)].map((x) => x[1]!));
}

describe('in-process mailer', () => {
  it('prints a mail event once per event id and ignores events that are not mail', async () => {
    const out = collector();
    const log = capturingLogger('debug');
    const mailer = createInProcessMailer(config, { logger: log.logger, stdout: out.stream });
    const url = 'https://app.example.test/reset-password?token=tok-in-process-1';
    const reset = passwordResetPayload('evt-1', url, Date.now() + 60_000);
    expect(await mailer.deliver(subjectFor(EventName.passwordResetRequested, PREFIX), reset, 'evt-1')).toBe(true);
    expect(await mailer.deliver(subjectFor(EventName.passwordResetRequested, PREFIX), reset, 'evt-1')).toBe(true);
    expect(out.text().split('----- end of mail -----').length - 1).toBe(1);
    expect(out.text()).toContain(url);
    expect(await mailer.deliver(subjectFor(EventName.sessionsRevoked, PREFIX), new Uint8Array(), 'evt-2')).toBe(false);
    expect(await mailer.deliver(subjectFor(EventName.securityAlert, PREFIX), securityAlertPayload('evt-3'), 'evt-3')).toBe(true);
    expect(out.text()).toContain('Subject: Your password was changed');
    expect(log.text()).not.toContain('tok-in-process-1');
    mailer.stop();
  });

  it('does not mail an expired reset link, and rejects a temporary SMTP failure so the event is kept', async () => {
    const smtp = await TestSmtpServer.start();
    try {
      smtp.answer = (n) => (n === 1 ? { code: 451, message: 'try again later' } : 'accept');
      const mailer = createInProcessMailer({ ...config, SMTP_URL: smtp.url }, { logger: capturingLogger().logger });
      const subject = subjectFor(EventName.passwordResetRequested, PREFIX);
      expect(await mailer.deliver(subject, passwordResetPayload('old', 'https://x.test/r?token=a', Date.now() - 1), 'old')).toBe(true);
      expect(smtp.attempts).toBe(0);
      const fresh = passwordResetPayload('new', 'https://x.test/r?token=b', Date.now() + 60_000);
      await expect(mailer.deliver(subject, fresh, 'new')).rejects.toThrow(/mail not sent/);
      expect(await mailer.deliver(subject, fresh, 'new')).toBe(true);
      expect(smtp.eventIds()).toEqual(['new']);
      mailer.stop();
    } finally {
      await smtp.close();
    }
  });
});

describe('identity without NATS_URL and SMTP_URL prints the reset mail', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ nats: false });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('says at start-up where mail goes', () => {
    expect(t.logs()).toContain('SMTP_URL unset, so mail (reset links included) is printed to stdout');
  });

  it('prints the link in the mail body only; the log never carries it; the link resets the password', async () => {
    const u = await signUp(t.connect);
    await t.connect.auth.requestPasswordReset({ email: u.email });
    await waitFor(() => printedLinks(t.mailOutput(), u.email).length === 1, 15_000, 25);
    const [link] = printedLinks(t.mailOutput(), u.email);
    const token = new URL(link!).searchParams.get('token')!;
    expect(token.length).toBeGreaterThan(20);

    // The printed output is mail and nothing else; the structured log has neither link nor token.
    expect(t.mailOutput().split('\n').some((l) => l.startsWith('{'))).toBe(false);
    expect(t.logs()).not.toContain(token);
    const sent = t.logs().split('\n').filter((l) => l.includes('mailer: mail printed to stdout'));
    expect(sent.some((l) => l.includes('"event":"password_reset_requested"'))).toBe(true);

    await t.connect.auth.resetPassword({ resetToken: token, newPassword: NEW_PASSWORD });
    expect((await t.connect.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
    // The reset also mails a security alert, printed the same way.
    await waitFor(() => t.mailOutput().includes(`To: ${u.email}\nSubject: Your password was reset`), 15_000, 25);
    expect(t.logs()).not.toContain(token);
  });
});

describe('identity without NATS_URL, with SMTP_URL, sends the reset mail over SMTP', () => {
  let t: TestIdentity;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await TestSmtpServer.start();
    t = await startTestIdentity({ nats: false, env: { SMTP_URL: smtp.url, SMTP_TIMEOUT_MS: '2000' } });
  });
  afterAll(async () => {
    await t?.stop();
    await smtp?.close();
  });

  it('says at start-up that mail is sent through SMTP_URL', () => {
    expect(t.logs()).toContain('mail is sent through SMTP_URL');
    expect(t.logs()).not.toContain(smtp.url);
  });

  it('a refused first attempt leaves the event in the outbox; the retry delivers exactly one mail whose link works', async () => {
    const u = await signUp(t.grpc);
    let refused = 0;
    smtp.answer = (_n, mail) =>
      mail.subject === 'Reset your password' && JSON.stringify(mail.to).includes(u.email) && refused++ === 0 ? { code: 451, message: 'try again later' } : 'accept';
    await t.grpc.auth.requestPasswordReset({ email: u.email });
    const isReset = (m: (typeof smtp.mails)[number]) => m.subject === 'Reset your password' && m.text?.includes('token=');
    await waitFor(() => smtp.mails.some((m) => isReset(m) && JSON.stringify(m.to).includes(u.email)), 20_000, 25);
    const rows: Array<{ attempts: number; published_at: Date | null }> = await t.app.internals.db.orm.em
      .fork()
      .execute(`select attempts, published_at from outbox where subject = 'password_reset_requested'`);
    expect(rows).toHaveLength(1);
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(rows[0]!.attempts).toBeGreaterThanOrEqual(1);
    const mails = smtp.mails.filter((m) => isReset(m) && JSON.stringify(m.to).includes(u.email));
    expect(mails).toHaveLength(1);
    expect(mails[0]!.text).not.toContain('----- mail');
    const link = /(https?:\/\/\S+[?&]token=\S+)/.exec(mails[0]!.text!)![1]!;
    await t.grpc.auth.resetPassword({ resetToken: new URL(link).searchParams.get('token')!, newPassword: NEW_PASSWORD });
    expect((await t.grpc.auth.login({ email: u.email, password: NEW_PASSWORD })).result.case).toBe('session');
    expect(t.mailOutput()).toBe('');
  });

  it('a mail the SMTP server keeps refusing does not hold back the events claimed with it', async () => {
    const stuck = await signUp(t.grpc);
    const holder = await signUp(t.grpc);
    const other = await signUp(t.grpc);
    const resetTo = (email: string) => (m: (typeof smtp.mails)[number]) => m.subject === 'Reset your password' && JSON.stringify(m.to).includes(email);
    // Sign-up mail settled first, so that from here on the relay sends only what this test asks for.
    await waitFor(() => smtp.mails.filter((m) => [stuck, holder, other].some((u) => JSON.stringify(m.to).includes(u.email))).length >= 3, 20_000, 25);
    smtp.answer = (_n, mail) => (resetTo(stuck.email)(mail) ? { code: 451, message: 'mailbox busy' } : 'accept');
    const stuckRow = async () =>
      ((await t.app.internals.db.orm.em
        .fork()
        .execute(`select attempts, published_at from outbox where subject = 'password_reset_requested' and position(convert_to(?, 'UTF8') in payload) > 0`, [
          stuck.email,
        ])) as Array<{ attempts: number; published_at: Date | null }>)[0];
    await t.grpc.auth.requestPasswordReset({ email: stuck.email });
    await waitFor(async () => ((await stuckRow())?.attempts ?? 0) >= 1, 20_000, 25);

    // The relay is kept busy with a held mail while the refused one comes due again and another
    // event queues up: the next claim holds both, the refused one first.
    let release!: () => void;
    smtp.hold = new Promise<void>((r) => (release = r));
    const attempts = smtp.attempts;
    await t.grpc.auth.requestPasswordReset({ email: holder.email });
    await waitFor(() => smtp.attempts > attempts, 20_000, 5);
    await t.grpc.auth.requestPasswordReset({ email: other.email });
    await new Promise((r) => setTimeout(r, 700)); // past the refused mail's first backoff (500 ms)
    smtp.hold = undefined;
    release();

    await waitFor(() => smtp.mails.some(resetTo(other.email)), 20_000, 25);
    expect(smtp.mails.some(resetTo(holder.email))).toBe(true);
    expect((await stuckRow())!.published_at).toBeNull();
    expect(smtp.mails.some(resetTo(stuck.email))).toBe(false);
  });
});
