/**
 * Medians of RequestPasswordReset for an existing, an unknown, a disabled and a per-email
 * throttled account (docs/security.md F1), against a fresh database on DATABASE_ADMIN_URL
 * (default postgres://root@127.0.0.1:5432/postgres), over gRPC. Not a test: timing varies by
 * machine; the figures go into reviews. `npx tsx scripts/reset-timing.ts [rounds]`
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { knex } from '@mikro-orm/postgresql';
import { AuthService } from '../src/gen/identity/v1/auth_pb.js';
import { startIdentity } from '../src/identity/app.js';
import { loadConfig } from '../src/shared/config.js';
import { silentLogger } from '../src/shared/logger.js';

const rounds = Number(process.argv[2] ?? 100);
const adminUrl = process.env.DATABASE_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const dbName = `latch_timing_${randomBytes(4).toString('hex')}`;
const admin = knex({ client: 'pg', connection: adminUrl });
await admin.raw(`create database ${dbName}`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'latch-timing-'));
const app = await startIdentity(
  loadConfig({
    NODE_ENV: 'test',
    GRPC_PORT: '0',
    HTTP_PORT: '0',
    OPS_PORT: '0',
    DATA_DIR: dataDir,
    DATABASE_URL: dbUrl.toString(),
    HIBP_ENABLED: 'false',
    PASSWORD_RESET_MAX_PER_IP: '1000000',
    PASSWORD_RESET_MAX_PER_EMAIL: '3',
    SIGNUP_MAX_PER_IP: '100000',
    TRUSTED_PROXIES: '127.0.0.1',
  }),
  // Without NATS_URL the reset mails are printed by the in-process mailer: discarded here.
  { logger: silentLogger, mailOutput: new Writable({ write: (_chunk, _enc, cb) => cb() }) },
);
try {
  const auth = createClient(AuthService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` }));
  const password = 'violet-harbour-quietly-1923';
  const email = (tag: string) => `${tag}-${randomBytes(4).toString('hex')}@example.test`;
  // A fresh account per sample, so no case gets cheaper as the run goes on (a reused email soon
  // passes its per-email limit and then does less work after answering).
  const pool = async (tag: string) => {
    const list: string[] = [];
    for (let i = 0; i < rounds; i++) {
      const e = email(tag);
      await auth.register({ email: e, password });
      list.push(e);
    }
    return list;
  };
  const existing = await pool('existing');
  const disabled = await pool('disabled');
  const throttled = await pool('throttled');
  await app.internals.db.orm.em.fork().execute(`update users set disabled = true where email like 'disabled-%'`);
  for (const e of throttled) for (let i = 0; i < 3; i++) await auth.requestPasswordReset({ email: e });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  let round = 0;
  const cases: Record<string, () => string> = {
    existing: () => existing[round]!,
    unknown: () => email('unknown'),
    disabled: () => disabled[round]!,
    throttled: () => throttled[round]!,
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (; round < rounds; round++) {
    // Interleaved, so drift on the machine touches every case alike.
    for (const [name, pick] of Object.entries(cases)) {
      const started = process.hrtime.bigint();
      await auth.requestPasswordReset({ email: pick() });
      samples[name]!.push(Number(process.hrtime.bigint() - started) / 1e6);
      // Lets the previous request's off-path work finish, so it does not land on the next sample.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
  console.log(`RequestPasswordReset over gRPC, ${rounds} rounds, interleaved`);
  for (const [name, xs] of Object.entries(samples)) console.log(`${name.padEnd(10)} median ${median(xs).toFixed(3)} ms  p90 ${p90(xs).toFixed(3)} ms`);
} finally {
  await app.stop();
  await admin.raw(`drop database if exists ${dbName} with (force)`);
  await admin.destroy();
  await rm(dataDir, { recursive: true, force: true });
}
