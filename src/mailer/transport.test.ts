import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { mailerConfigSchema } from '../shared/config.js';
import { classifyFailure, createMailTransport } from './transport.js';

describe('classifyFailure', () => {
  it('treats SMTP 5xx as permanent and everything else (4xx, network, refused login) as temporary', () => {
    expect(classifyFailure({ responseCode: 550 })).toBe('permanent');
    expect(classifyFailure({ responseCode: 554, code: 'EENVELOPE' })).toBe('permanent');
    expect(classifyFailure({ responseCode: 451 })).toBe('temporary');
    expect(classifyFailure({ responseCode: 421 })).toBe('temporary');
    expect(classifyFailure({ code: 'ECONNECTION' })).toBe('temporary');
    expect(classifyFailure({ code: 'ETIMEDOUT' })).toBe('temporary');
    expect(classifyFailure({ code: 'EAUTH', responseCode: 535 })).toBe('temporary');
    expect(classifyFailure(new Error('boom'))).toBe('temporary');
  });
});

describe('stdout delivery (SMTP_URL unset)', () => {
  it('prints the whole mail, since that is how a developer receives it', async () => {
    let out = '';
    const sink = new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) });
    const transport = createMailTransport(mailerConfigSchema.parse({ NATS_URL: 'nats://x' }), sink);
    expect(transport.kind).toBe('stdout');
    await transport.send({ to: 'a@example.com', subject: 'Reset your password', text: 'https://app.test/r?token=t\n', html: '' }, 'e1');
    expect(out).toContain('To: a@example.com');
    expect(out).toContain('https://app.test/r?token=t');
  });

  it('is refused in production', () => {
    expect(mailerConfigSchema.safeParse({ NATS_URL: 'nats://x', NODE_ENV: 'production' }).success).toBe(false);
    expect(mailerConfigSchema.safeParse({ NATS_URL: 'nats://x', NODE_ENV: 'production', SMTP_URL: 'smtps://u:p@mail.test:465' }).success).toBe(true);
    expect(mailerConfigSchema.safeParse({}).success).toBe(false);
  });
});
