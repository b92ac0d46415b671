import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMailer, type MailerApp } from '../../src/mailer/mailer.js';
import { capturingLogger, deleteStream, randomStream, waitFor } from '../events/support.js';
import { bearer, signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';
import { describeWithNats, services } from '../helpers/services.js';
import { mailerTestConfig, TestSmtpServer } from './support.js';

/** The contract between the two processes: what identity publishes, the mailer can mail. */
describeWithNats('identity → JetStream → mailer → SMTP', () => {
  const natsUrl = services().natsUrl!;
  const stream = randomStream();
  let t: TestIdentity;
  let smtp: TestSmtpServer;
  let mailer: MailerApp;

  beforeAll(async () => {
    t = await startTestIdentity({ nats: { url: natsUrl, ...stream } });
    smtp = await TestSmtpServer.start();
    mailer = await startMailer(
      mailerTestConfig({ NATS_URL: natsUrl, EVENTS_STREAM: stream.streamName, EVENTS_SUBJECT_PREFIX: stream.subjectPrefix, SMTP_URL: smtp.url }),
      { logger: capturingLogger('info').logger },
    );
  });

  afterAll(async () => {
    await mailer?.stop();
    await smtp?.close();
    await t?.stop();
    await deleteStream(natsUrl, stream.streamName);
  });

  it('a password change mails its owner a "password changed" alert', async () => {
    const u = await signUp(t.grpc);
    await t.grpc.auth.changePassword({ currentPassword: u.password, newPassword: 'pale-comet-returns-4471' }, bearer(u.session.accessToken));
    await waitFor(() => smtp.mails.some((m) => m.subject === 'Your password was changed'), 15_000, 50);
    const mail = smtp.mails.find((m) => m.subject === 'Your password was changed')!;
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.text : '').toBe(u.email);
    expect(mail.text).toContain('The password of your account was changed.');
    expect(mail.text).not.toContain('pale-comet-returns-4471');
    expect(mail.text).not.toContain(u.password);
  });
});
