import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startMailer } from '../../src/mailer/mailer.js';
import { EventName } from '../../src/shared/event-subjects.js';
import { capturingLogger, deleteStream, randomStream, waitFor } from '../events/support.js';
import { describeWithNats, services } from '../helpers/services.js';
import { createStream, mailerTestConfig, natsConnection, publishEvent, securityAlertPayload, TestSmtpServer } from './support.js';

const repoRoot = path.join(import.meta.dirname, '..', '..');

interface MailerProcess {
  proc: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm run start:mailer` without npm in between, so signals reach the mailer itself. */
async function spawnMailer(env: Record<string, string>): Promise<MailerProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/mailer/main.ts'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', MAILER_HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // Both durable consumers (security alerts, reset requests) attached.
  await waitFor(() => out.split('mailer: consuming').length - 1 >= 2 || proc.exitCode !== null, 30_000);
  if (proc.exitCode !== null) throw new Error(`mailer exited before consuming:\n${out}`);
  return { proc, output: () => out, exited };
}

describeWithNats('mailer process: SIGTERM and SIGKILL', () => {
  const natsUrl = services().natsUrl!;
  const streams: string[] = [];
  const children: ChildProcess[] = [];
  let nc: NatsConnection;
  let smtp: TestSmtpServer | undefined;

  beforeAll(async () => {
    nc = await natsConnection(natsUrl);
  });

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await smtp?.close();
    smtp = undefined;
  });

  afterAll(async () => {
    await nc?.close();
    for (const name of streams) await deleteStream(natsUrl, name);
  });

  async function setUp(): Promise<{ env: Record<string, string>; prefix: string }> {
    const { streamName, subjectPrefix } = randomStream();
    streams.push(streamName);
    await createStream(nc, streamName, subjectPrefix);
    smtp = await TestSmtpServer.start();
    return {
      prefix: subjectPrefix,
      env: {
        NATS_URL: natsUrl,
        EVENTS_STREAM: streamName,
        EVENTS_SUBJECT_PREFIX: subjectPrefix,
        SMTP_URL: smtp.url,
        SMTP_TIMEOUT_MS: '1000',
        MAILER_BACKOFF_MS: '100',
        MAILER_MAX_BACKOFF_MS: '400',
      },
    };
  }

  async function publishAlerts(prefix: string, n: number): Promise<string[]> {
    const ids = Array.from({ length: n }, () => randomUUID());
    for (const id of ids) await publishEvent(nc, prefix, EventName.securityAlert, securityAlertPayload(id), id);
    return ids;
  }

  it('SIGTERM stops pulling, finishes the mail in flight, acks it, and leaves the rest for later', async () => {
    const { env, prefix } = await setUp();
    let release!: () => void;
    smtp!.hold = new Promise((r) => (release = r));
    const child = await spawnMailer({ ...env, MAILER_CONCURRENCY: '1' });
    children.push(child.proc);
    const ids = await publishAlerts(prefix, 3);
    await waitFor(() => smtp!.attempts === 1, 10_000);

    child.proc.kill('SIGTERM');
    await waitFor(() => child.output().includes('mailer: stopping'), 10_000);
    let exitedEarly = false;
    void child.exited.then(() => (exitedEarly = true));
    // The SMTP server has not answered yet: the mailer must still be waiting for it.
    await new Promise((r) => setTimeout(r, 200));
    expect(exitedEarly).toBe(false);
    release();
    smtp!.hold = undefined;
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(smtp!.mails).toHaveLength(1);
    expect(child.output()).toContain('mailer: stopped');

    // The next mailer delivers the other two and not the first again: it was acked, they were not.
    const log = capturingLogger('info');
    const next = await startMailer(mailerTestConfig(env), { logger: log.logger });
    try {
      await waitFor(() => smtp!.mails.length >= 3, 15_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(smtp!.eventIds().sort()).toEqual([...ids].sort());
    } finally {
      await next.stop();
    }
  });

  it('SIGTERM during a send that fails temporarily leaves that event unacked for the next mailer', async () => {
    const { env, prefix } = await setUp();
    let release!: () => void;
    smtp!.hold = new Promise((r) => (release = r));
    smtp!.answer = (attempt) => (attempt === 1 ? { code: 451, message: 'try again later' } : 'accept');
    const child = await spawnMailer({ ...env, MAILER_CONCURRENCY: '1' });
    children.push(child.proc);
    const [id] = await publishAlerts(prefix, 1);
    await waitFor(() => smtp!.attempts === 1, 10_000);
    child.proc.kill('SIGTERM');
    await waitFor(() => child.output().includes('mailer: stopping'), 10_000);
    release();
    smtp!.hold = undefined;
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(smtp!.mails).toHaveLength(0);

    const log = capturingLogger('info');
    const next = await startMailer(mailerTestConfig(env), { logger: log.logger });
    try {
      await waitFor(() => smtp!.mails.length === 1, 15_000);
      expect(smtp!.eventIds()).toEqual([id]);
    } finally {
      await next.stop();
    }
  });

  it('killed (SIGKILL) in the middle of 100 alerts and restarted: all 100 delivered, duplicates at most the mails in flight', async () => {
    const { env, prefix } = await setUp();
    const concurrency = 4;
    const childEnv = { ...env, MAILER_CONCURRENCY: String(concurrency) };
    smtp!.delayMs = 20;
    const first = await spawnMailer(childEnv);
    children.push(first.proc);
    smtp!.onAttempt = () => {
      if (smtp!.attempts === 40) first.proc.kill('SIGKILL');
    };
    const ids = await publishAlerts(prefix, 100);
    expect((await first.exited).signal).toBe('SIGKILL');
    const deliveredBeforeKill = smtp!.mails.length;
    smtp!.onAttempt = () => {};

    const second = await spawnMailer(childEnv);
    children.push(second.proc);
    await waitFor(() => new Set(smtp!.eventIds()).size === 100, 60_000);
    // Redeliveries of the in-flight ones arrive after the ack wait; give them a moment to show.
    await new Promise((r) => setTimeout(r, 500));
    second.proc.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    const received = smtp!.eventIds();
    expect(new Set(received)).toEqual(new Set(ids));
    const duplicates = received.length - new Set(received).size;
    console.log(`mailer crash test: ${deliveredBeforeKill} mails before SIGKILL, ${received.length} in all, ${duplicates} duplicates (limit ${concurrency} in flight)`);
    expect(duplicates).toBeLessThanOrEqual(concurrency);
  });
});
