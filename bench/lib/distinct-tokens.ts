import { randomBytes, randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import { create, toBinary } from '@bufbuild/protobuf';
import { knex } from '@mikro-orm/postgresql';
import { IntrospectRequestSchema } from '../../src/gen/identity/v1/introspection_pb.js';
import { importPrivateKey, isSigningAlgorithm } from '../../src/identity/token/key-material.js';
import type { SigningKeyStore } from '../../src/identity/token/key-store.js';
import { signJwt } from '../../src/identity/token/strict-jwt.js';
import { SecretBox } from '../../src/shared/secret-box.js';
import { grpcFrame } from './h2load.js';
import { summarize, type LatencySummary } from './stats.js';

/**
 * Many distinct users' access tokens, and a load generator that rotates through them.
 *
 * Signing up 10,000 users through Register and Login would cost 20,000 Argon2id hashes (minutes on
 * two cores) and measure nothing Introspect does. Instead the users are inserted into the service's
 * own database (a password hash that matches no password; nobody signs in as them) and their access
 * tokens are signed by the bench with the service's current signing key, read from that database
 * and opened with the SECRET_ENCRYPTION_KEY the bench gave the service: same header, same claims
 * as AccessTokens.issue, so Introspect cannot tell them from tokens it issued.
 *
 * h2load replays one request body, so it cannot rotate tokens: the rotating load is a small
 * node:http2 client (same connections × streams as the gRPC rows, prebuilt frames, no protobuf
 * work per call), and its baseline is floor (b) driven by this same client.
 */

export interface MintedToken {
  token: string;
  userId: string;
}

export interface ClaimSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

async function withDb<T>(url: string, fn: (db: ReturnType<typeof knex>) => Promise<T>): Promise<T> {
  const db = knex({ client: 'pg', connection: { connectionString: url }, pool: { min: 0, max: 1 } });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

/** Inserts `count` enabled users in one statement; answers their ids. */
export async function seedUsers(databaseUrl: string, count: number, tag: string): Promise<string[]> {
  return withDb(databaseUrl, async (db) => {
    const r = await db.raw(
      `insert into users (id, email, password_hash)
       select gen_random_uuid(), 'bench-' || ? || '-' || g || '@example.test', '$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtaGFzaA$bm90LWEtaGFzaA'
         from generate_series(1, ?) g
       returning id`,
      [tag, count],
    );
    return (r.rows as Array<{ id: string }>).map((row) => row.id);
  });
}

/** `perUser` access tokens for every user, each with a session id and jti of its own. */
export async function mintAccessTokens(databaseUrl: string, secretKeyBase64: string, userIds: readonly string[], perUser: number, claims: ClaimSettings): Promise<MintedToken[]> {
  const key = await withDb(databaseUrl, async (db) => {
    const r = await db.raw(`select kid, algorithm, private_key_enc from signing_keys where sign_until > now() order by created_at limit 1`);
    return r.rows[0] as { kid: string; algorithm: string; private_key_enc: Buffer } | undefined;
  });
  if (!key || !isSigningAlgorithm(key.algorithm)) throw new Error('the service has no signing key in its database');
  const alg = key.algorithm;
  const privateKey = await importPrivateKey(key.kid, alg, key.private_key_enc, new SecretBox(Buffer.from(secretKeyBase64, 'base64')));
  const keys = { acquireSigningKey: async () => ({ kid: key.kid, alg, key: privateKey }) } as unknown as SigningKeyStore;
  const nowMs = Date.now();
  const iat = Math.floor(nowMs / 1000);
  const out: MintedToken[] = [];
  for (let i = 0; i < perUser; i++) {
    for (const userId of userIds) {
      const payload = {
        iss: claims.issuer,
        sub: userId,
        aud: claims.audience,
        exp: iat + claims.ttlSeconds,
        iat,
        iat_ms: nowMs,
        jti: randomBytes(16).toString('base64url'),
        client_id: 'latch',
        role: 'user',
        sid: randomUUID(),
        amr: ['pwd'],
      };
      out.push({ token: await signJwt(keys, 'at+jwt', payload), userId });
    }
  }
  return out;
}

export interface RotatingRequests {
  path: string;
  headers: Record<string, string>;
  frames: Buffer[];
  /** The user each frame's token belongs to, to check the answer. */
  userIds: string[];
}

export function introspectFrames(tokens: readonly MintedToken[], introspectionSecret: string): RotatingRequests {
  return {
    path: '/identity.v1.TokenIntrospectionService/Introspect',
    headers: { 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${introspectionSecret}` },
    frames: tokens.map((t) => grpcFrame(toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: t.token, tokenTypeHint: 'access_token' })))),
    userIds: tokens.map((t) => t.userId),
  };
}

export interface RotatingResult {
  count: number;
  seconds: number;
  latency: LatencySummary;
  samplesMs: number[];
  /** Answers that were not grpc-status 0 with active=true and the token's own sub. */
  wrong: number;
  firstWrong?: string;
}

/**
 * Closed loop: `clients` HTTP/2 connections × `streams` calls in flight each, frames taken in
 * order from a shared cursor, so one pass over n frames presents every token once. Stops after
 * `maxRequests` or `durationMs`, whichever comes first. `check` false skips reading the answer
 * (for a floor that answers every token with one prebuilt response).
 */
export async function runRotating(
  baseUrl: string,
  req: RotatingRequests,
  o: { clients: number; streams: number; durationMs: number; maxRequests?: number; check: boolean; start?: number },
): Promise<RotatingResult & { next: number }> {
  const sessions = await Promise.all(
    Array.from({ length: o.clients }, () => new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const s = http2.connect(baseUrl);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    })),
  );
  const headers = { ':method': 'POST', ':path': req.path, ...req.headers };
  let cursor = o.start ?? 0;
  let count = 0;
  let wrong = 0;
  let firstWrong: string | undefined;
  const samplesMs: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  const max = o.maxRequests ?? Infinity;
  const one = (s: http2.ClientHttp2Session, i: number) =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const stream = s.request(headers);
      const chunks: Buffer[] = [];
      let status: string | undefined;
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      stream.on('trailers', (t) => (status = String(t['grpc-status'])));
      if (o.check) stream.on('data', (c: Buffer) => chunks.push(c));
      else stream.resume();
      const done = (err?: Error) => {
        samplesMs.push(performance.now() - started);
        count++;
        let bad: string | undefined;
        if (err) bad = err.message;
        else if (status !== '0') bad = `grpc-status ${status}`;
        else if (o.check) {
          // IntrospectResponse: field 1 (active) = true is 08 01, then field 2 (sub) 12 <len> <uuid>.
          const m = Buffer.concat(chunks).subarray(5);
          const uid = req.userIds[i]!;
          if (m[0] !== 0x08 || m[1] !== 0x01 || m.subarray(4, 4 + uid.length).toString() !== uid) bad = 'inactive or wrong sub';
        }
        if (bad) {
          wrong++;
          firstWrong ??= bad;
        }
        resolve();
      };
      stream.on('end', () => done());
      stream.on('error', (e) => done(e));
      stream.end(req.frames[i]);
    });
  const worker = async (s: http2.ClientHttp2Session) => {
    while (performance.now() < deadline && cursor - (o.start ?? 0) < max) {
      const i = cursor++ % req.frames.length;
      await one(s, i);
    }
  };
  await Promise.all(sessions.flatMap((s) => Array.from({ length: o.streams }, () => worker(s))));
  const seconds = (performance.now() - t0) / 1000;
  for (const s of sessions) s.close();
  return { count, seconds, latency: summarize(samplesMs), samplesMs, wrong, firstWrong, next: cursor };
}
