import { z } from 'zod';

/**
 * The only module that reads the environment. Every variable is documented here, in
 * .env.example and in docs/operations.md; test/config/compose.test.ts keeps those three in step.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(0).max(65535);

const list = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  );

/** `name:secret` pairs; secrets of at least 32 characters (docs/api.md, TokenIntrospectionService). */
const introspectionClients = list.transform((items, ctx) => {
  const out: { name: string; secret: string }[] = [];
  for (const item of items) {
    const i = item.indexOf(':');
    const name = i > 0 ? item.slice(0, i) : '';
    const secret = i > 0 ? item.slice(i + 1) : '';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || secret.length < 32) {
      ctx.addIssue({
        code: 'custom',
        message: `each entry must be name:secret with a name of [A-Za-z0-9_.-] and a secret of at least 32 characters (entry ${out.length + 1} is not)`,
      });
      return z.NEVER;
    }
    out.push({ name, secret });
  }
  return out;
});

/** 32 bytes, base64 or hex. */
const key32 = z.string().transform((s, ctx) => {
  const buf = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  if (buf.length !== 32) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes, base64 or 64 hex characters' });
    return z.NEVER;
  }
  return buf;
});

/**
 * How mail is delivered, read by the mailer process and, with NATS_URL unset, by the identity
 * process, which then runs the same mailer code in-process (src/mailer/in-process.ts).
 */
const mailDeliveryFields = {
  SMTP_URL: z.string().regex(/^smtps?:\/\/[^\s]+$/, 'must be an smtp:// or smtps:// URL').optional(),
  SMTP_TIMEOUT_MS: z.coerce.number().int().min(1000).max(120_000).default(10_000),
  MAIL_FROM: z.string().min(3).default('Latch <no-reply@localhost>'),
  MAILER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
};

export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ACCESS_LOG_SLOW_MS: z.coerce.number().int().min(0).max(600_000).default(100),
    BIND_ADDRESS: z.string().default('127.0.0.1'),
    GRPC_PORT: port.default(50051),
    HTTP_PORT: port.default(8080),
    OPS_PORT: port.default(9464),
    OPS_BIND_ADDRESS: z.string().default('127.0.0.1'),
    GRPC_REFLECTION: bool.optional(),
    GRPC_HANDSHAKE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
    DATA_DIR: z.string().default('./data'),
    DATABASE_URL: z.string().url().optional(),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
    DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
    DATABASE_ACQUIRE_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
    DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
    REDIS_URL: z.string().url().optional(),
    REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default('latch'),
    NATS_URL: z.string().optional(),
    EVENTS_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/).default('IDENTITY_EVENTS'),
    EVENTS_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/).default('identity.events'),
    ...mailDeliveryFields,
    CORS_ORIGINS: list.default([]),
    // docs/security.md W1-W4: the refresh token in an HttpOnly cookie for browsers that opt in.
    BROWSER_REFRESH_COOKIE: bool.default(false),
    REFRESH_COOKIE_NAME: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('latch_refresh'),
    REFRESH_COOKIE_SAMESITE: z.enum(['Strict', 'Lax', 'None']).default('Strict'),
    TRUSTED_PROXIES: list.default([]),
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),

    JWT_ISSUER: z.string().min(1).default('latch'),
    JWT_AUDIENCE: z.string().min(1).default('latch'),
    SIGNING_ALGORITHM: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
    SIGNING_KEY_ROTATION_HOURS: z.coerce.number().min(1).max(24 * 365).default(24 * 30),
    SECRET_ENCRYPTION_KEY: key32.optional(),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(3600).default(900),
    REFRESH_TOKEN_IDLE_TTL_SECONDS: z.coerce.number().int().min(60).default(14 * 86400),
    REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS: z.coerce.number().int().min(60).default(30 * 86400),
    REFRESH_GRACE_SECONDS: z.coerce.number().int().min(0).max(60).default(10),

    INTROSPECTION_CLIENTS: introspectionClients.optional(),
    ACCESS_TOKEN_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
    INTROSPECTION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(5000),

    PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(64).default(15),
    PASSWORD_MAX_BYTES: z.coerce.number().int().min(256).max(4096).default(1024),
    ARGON2_MEMORY_KIB: z.coerce.number().int().min(19456).default(19456),
    ARGON2_TIME_COST: z.coerce.number().int().min(2).default(2),
    ARGON2_PARALLELISM: z.coerce.number().int().min(1).default(1),
    HASH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
    HASH_QUEUE_MAX: z.coerce.number().int().min(0).default(64),
    HASH_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(100).default(5000),
    HASH_NEW_PASSWORD_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
    HASH_NEW_PASSWORD_QUEUE_MAX: z.coerce.number().int().min(0).default(16),

    LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP: z.coerce.number().int().min(1).max(100).default(10),
    LOGIN_MAX_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).max(100).default(100),
    LOGIN_ACCOUNT_LOCK_SECONDS: z.coerce.number().int().min(1).default(15 * 60),
    LOGIN_MAX_FAILURES_PER_IP: z.coerce.number().int().min(1).default(100),
    LOGIN_IP_WINDOW_SECONDS: z.coerce.number().int().min(1).default(15 * 60),

    MFA_MAX_FAILURES_PER_USER: z.coerce.number().int().min(1).max(100).default(10),
    MFA_LOCK_SECONDS: z.coerce.number().int().min(1).default(3600),

    SIGNUP_ENABLED: bool.default(true),
    SIGNUP_MAX_PER_IP: z.coerce.number().int().min(1).default(10),
    SIGNUP_IP_WINDOW_SECONDS: z.coerce.number().int().min(1).default(3600),
    SIGNUP_REFUSAL_DELAY_MS: z.coerce.number().int().min(0).max(10_000).default(1000),
    ADMIN_EMAIL: z.string().email().optional(),
    ADMIN_PASSWORD: z.string().optional(),

    // docs/security.md P2: the breach check of new passwords against the HIBP range API.
    HIBP_ENABLED: bool.default(true),
    HIBP_URL: z.string().url().regex(/^https?:\/\//, 'must be an http:// or https:// URL').default('https://api.pwnedpasswords.com'),
    HIBP_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(1500),
    HIBP_FAILURE_MODE: z.enum(['open', 'closed']).default('open'),
    HIBP_CACHE_SIZE: z.coerce.number().int().min(0).max(100_000).default(1000),
    HIBP_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(7 * 86400).default(3600),

    // docs/security.md F1-F4: password reset.
    PUBLIC_RESET_URL: z.string().url().regex(/^https?:\/\//, 'must be an http:// or https:// URL').optional(),
    PASSWORD_RESET_TTL_SECONDS: z.coerce.number().int().min(60).max(1800).default(1800),
    PASSWORD_RESET_MAX_PER_IP: z.coerce.number().int().min(1).default(10),
    PASSWORD_RESET_MAX_PER_EMAIL: z.coerce.number().int().min(1).max(100).default(3),
    PASSWORD_RESET_WINDOW_SECONDS: z.coerce.number().int().min(60).default(3600),

    // docs/security.md V1: email verification.
    PUBLIC_VERIFY_EMAIL_URL: z.string().url().regex(/^https?:\/\//, 'must be an http:// or https:// URL').optional(),
    EMAIL_VERIFICATION_TTL_SECONDS: z.coerce.number().int().min(300).max(7 * 86400).default(86400),
    EMAIL_VERIFICATION_MAX_PER_USER: z.coerce.number().int().min(1).max(100).default(5),
    EMAIL_VERIFICATION_WINDOW_SECONDS: z.coerce.number().int().min(60).default(3600),
    REQUIRE_VERIFIED_EMAIL: bool.default(false),
  })
  .superRefine((c, ctx) => {
    if (c.BROWSER_REFRESH_COOKIE && c.CORS_ORIGINS.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['BROWSER_REFRESH_COOKIE'], message: 'the refresh cookie is only honoured from CORS_ORIGINS; set them' });
    }
    if ((c.ADMIN_EMAIL === undefined) !== (c.ADMIN_PASSWORD === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['ADMIN_PASSWORD'], message: 'ADMIN_EMAIL and ADMIN_PASSWORD go together' });
    }
    if (c.LOGIN_MAX_FAILURES_PER_ACCOUNT < c.LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP) {
      ctx.addIssue({
        code: 'custom',
        path: ['LOGIN_MAX_FAILURES_PER_ACCOUNT'],
        message: 'must be at least LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP (it is the ceiling over every address)',
      });
    }
    if (c.REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS < c.REFRESH_TOKEN_IDLE_TTL_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS'],
        message: 'must be at least REFRESH_TOKEN_IDLE_TTL_SECONDS',
      });
    }
    if (c.NODE_ENV === 'production') {
      // Production never invents its own key material or falls back to single-process backends.
      for (const k of ['DATABASE_URL', 'SECRET_ENCRYPTION_KEY', 'INTROSPECTION_CLIENTS', 'REDIS_URL', 'NATS_URL', 'PUBLIC_RESET_URL', 'PUBLIC_VERIFY_EMAIL_URL'] as const) {
        if (c[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'required when NODE_ENV=production' });
      }
    }
  });

export type Config = z.output<typeof configSchema>;

/** Server reflection: on unless set, except in production where it is off unless set. */
export function reflectionEnabled(c: Config): boolean {
  return c.GRPC_REFLECTION ?? c.NODE_ENV !== 'production';
}

/** Where reset links point (docs/security.md F3): set in production, a local page in development. */
export function publicResetUrl(c: Config): string {
  return c.PUBLIC_RESET_URL ?? 'http://localhost:3000/reset-password';
}

/** Where verification links point: set in production, a local page in development. */
export function publicVerifyEmailUrl(c: Config): string {
  return c.PUBLIC_VERIFY_EMAIL_URL ?? 'http://localhost:3000/verify-email';
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of configVariableNames()) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    // zod messages name the rule, never the value, so secrets do not leak into this text.
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

/** The names of every variable the service reads (used by docs and compose checks). */
export function configVariableNames(): string[] {
  return Object.keys(configSchema.shape);
}

/**
 * The mailer process (src/mailer/main.ts) reads its own variables through this schema; the
 * variables it shares with the identity process (NATS_URL, the stream and prefix, NODE_ENV,
 * LOG_LEVEL) reuse the identity schema's definitions so both processes read them alike.
 */
export const mailerConfigSchema = z
  .object({
    NODE_ENV: configSchema.shape.NODE_ENV,
    LOG_LEVEL: configSchema.shape.LOG_LEVEL,
    NATS_URL: configSchema.shape.NATS_URL,
    EVENTS_STREAM: configSchema.shape.EVENTS_STREAM,
    EVENTS_SUBJECT_PREFIX: configSchema.shape.EVENTS_SUBJECT_PREFIX,
    ...mailDeliveryFields,
    MAILER_BIND_ADDRESS: z.string().default('127.0.0.1'),
    MAILER_HTTP_PORT: port.default(9465),
    MAILER_CONSUMER_NAME: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('latch-mailer'),
    MAILER_MAX_DELIVER: z.coerce.number().int().min(1).max(1000).default(12),
    MAILER_BACKOFF_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
    MAILER_MAX_BACKOFF_MS: z.coerce.number().int().min(100).max(3_600_000).default(300_000),
  })
  .superRefine((c, ctx) => {
    if (c.NATS_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['NATS_URL'], message: 'the mailer consumes events from NATS JetStream: set NATS_URL' });
    }
    if (c.MAILER_MAX_BACKOFF_MS < c.MAILER_BACKOFF_MS) {
      ctx.addIssue({ code: 'custom', path: ['MAILER_MAX_BACKOFF_MS'], message: 'must be at least MAILER_BACKOFF_MS' });
    }
    if (c.NODE_ENV === 'production' && c.SMTP_URL === undefined) {
      // Without it mail goes to stdout, which is a development delivery only.
      ctx.addIssue({ code: 'custom', path: ['SMTP_URL'], message: 'required when NODE_ENV=production' });
    }
  });

export type MailerConfig = z.output<typeof mailerConfigSchema>;

/** The names of every variable the mailer reads. */
export function mailerConfigVariableNames(): string[] {
  return Object.keys(mailerConfigSchema.shape);
}

export function loadMailerConfig(env: Record<string, string | undefined> = process.env): MailerConfig {
  const input: Record<string, string> = {};
  for (const key of mailerConfigVariableNames()) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const parsed = mailerConfigSchema.safeParse(input);
  if (!parsed.success) {
    // As for loadConfig: the messages name the rule, never the value (SMTP_URL may hold a password).
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid mailer configuration:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}
