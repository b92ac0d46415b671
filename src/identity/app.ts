import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { publicResetUrl, publicVerifyEmailUrl, reflectionEnabled, type Config } from '../shared/config.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { SecretBox } from '../shared/secret-box.js';
import { AdminService as AdminRpc } from '../gen/identity/v1/admin_pb.js';
import { AuthService as AuthRpc } from '../gen/identity/v1/auth_pb.js';
import { TokenIntrospectionService as IntrospectionRpc } from '../gen/identity/v1/introspection_pb.js';
import { LoginThrottle } from './abuse/login-throttle.js';
import { ResetThrottle } from './abuse/reset-throttle.js';
import { VerificationThrottle } from './abuse/verification-throttle.js';
import { SignupThrottle } from './abuse/signup-throttle.js';
import { AccountService } from './account/account-service.js';
import { PasswordAttempts } from './account/password-attempts.js';
import { UserEntity } from './account/user.entity.js';
import { UserStore } from './account/user-store.js';
import { AdminService } from './admin/admin-service.js';
import { bootstrapAdmin } from './admin/bootstrap.js';
import { OutboxEntity } from './events/outbox.entity.js';
import { startEvents, type EventsRuntime } from './events/runtime.js';
import { createInProcessMailer } from '../mailer/in-process.js';
import { CallerCredentials } from './introspection/caller-credentials.js';
import { IntrospectionService, type ActiveToken } from './introspection/introspection-service.js';
import { UserStateCache } from './introspection/user-state-cache.js';
import { createMfaAttemptLimiter } from './mfa/mfa-attempt-limiter.js';
import { MfaService } from './mfa/mfa-service.js';
import { BREACH_CHECK_USER_AGENT, breachCheckDisabled, HibpBreachCheck, type PasswordBreachCheck } from './password/breach-check.js';
import { breachCheckCounter } from './password/breach-check-metrics.js';
import { PasswordHasher } from './password/hasher.js';
import { PasswordPolicy } from './password/policy.js';
import { openDatabase, type Database, type EntityList } from './persistence/database.js';
import { assertPortsFree } from './process/listen-ports.js';
import { loadOrCreateLocalSecret } from './secrets/local-secrets.js';
import { startGrpcServer } from './rpc/transports/grpc-server.js';
import { adminHandlers } from './rpc/handlers/admin-handlers.js';
import { authHandlers } from './rpc/handlers/auth-handlers.js';
import { introspectionHandlers } from './rpc/handlers/introspection-handlers.js';
import { startHttpServer } from './rpc/transports/http-server.js';
import { createMetrics } from './rpc/pipeline/metrics.js';
import { startOpsServer } from './rpc/transports/ops-server.js';
import { refreshCookieFromConfig } from './rpc/transports/refresh-cookie.js';
import type { Authenticator } from './rpc/pipeline/auth-policy.js';
import type { Principal } from './rpc/pipeline/context-keys.js';
import { wrapService } from './rpc/pipeline/wrap-service.js';
import { AccessLogSummary } from './rpc/pipeline/access-log-summary.js';
import { OffPathQueue } from './recovery/off-path-queue.js';
import { PasswordReset } from './recovery/password-reset.js';
import { EmailVerification } from './verification/email-verification.js';
import { PasswordChange } from './signin/password-change.js';
import { SessionIssuer } from './signin/session-issuer.js';
import { SignInService } from './signin/sign-in-service.js';
import { SessionService } from './session/session-service.js';
import { SessionStore } from './session/session-store.js';
import { AccessTokens } from './token/access-token.js';
import { SigningKeyStore } from './token/key-store.js';
import { SigningKeyEntity } from './token/signing-key.entity.js';
import { oncePer } from '../shared/once-per.js';
import { andThen } from '../shared/maybe-promise.js';

/** Every entity the service maps through MikroORM, from the domains that own them. */
export const identityEntities: EntityList = [UserEntity, SigningKeyEntity, OutboxEntity];

export interface IdentityApp {
  grpcPort: number;
  httpPort: number;
  /** /metrics, /healthz, /readyz on OPS_BIND_ADDRESS (loopback by default). */
  opsPort: number;
  /** Stops accepting, finishes in-flight calls, then closes every pool and the embedded database. */
  stop(): Promise<void>;
  /** For integration tests and benchmarks; not an API. */
  readonly internals: {
    db: Database;
    keys: SigningKeyStore;
    tokens: AccessTokens;
    sessions: SessionService;
    accounts: AccountService;
    hasher: PasswordHasher;
    users: UserStateCache;
    events: EventsRuntime;
    introspectionClients: { name: string; secret: string }[];
  };
}

/**
 * Sign-in limits must not start on per-replica memory just because Redis was still connecting;
 * if Redis stays away the limiter falls back per replica, which is logged and counted.
 */
async function redisReady(redis: Redis, timeoutMs: number, logger: Logger): Promise<void> {
  if (redis.status === 'ready') return;
  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!(await ready)) logger.warn({ timeoutMs }, 'redis not ready at start-up: limits apply per replica until it is');
}

export interface StartOptions {
  logger: Logger;
  clock?: Clock;
  /** Without NATS_URL and SMTP_URL, where the in-process mailer prints mail; process.stdout by default. */
  mailOutput?: NodeJS.WritableStream;
}

/** The composition root: reads nothing but `config`, builds everything, starts both listeners. */
export async function startIdentity(config: Config, opts: StartOptions): Promise<IdentityApp> {
  const { logger } = opts;
  const clock = opts.clock ?? systemClock;
  const cleanup: (() => Promise<unknown> | void)[] = [];
  const closeAll = async () => {
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.warn({ err }, 'shutdown step failed');
      }
    }
  };

  try {
    await assertPortsFree([
      { variable: 'GRPC_PORT', host: config.BIND_ADDRESS, port: config.GRPC_PORT },
      { variable: 'HTTP_PORT', host: config.BIND_ADDRESS, port: config.HTTP_PORT },
      { variable: 'OPS_PORT', host: config.OPS_BIND_ADDRESS, port: config.OPS_PORT },
    ]);
    const db = await openDatabase({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.DATA_DIR,
      poolMax: config.DATABASE_POOL_MAX,
      waits: {
        connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
        acquireTimeoutMs: config.DATABASE_ACQUIRE_TIMEOUT_MS,
        statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
      },
      logger,
      entities: identityEntities,
    });
    cleanup.push(() => db.close());
    const { orm } = db;

    const secretKey =
      config.SECRET_ENCRYPTION_KEY ??
      Buffer.from(await loadOrCreateLocalSecret(config.DATA_DIR, 'secret-encryption-key', () => randomBytes(32).toString('base64')), 'base64');
    const box = new SecretBox(secretKey);
    const introspectionClients = config.INTROSPECTION_CLIENTS ?? [
      { name: 'local', secret: await loadOrCreateLocalSecret(config.DATA_DIR, 'introspection-client', () => randomBytes(32).toString('base64url')) },
    ];
    if (!config.INTROSPECTION_CLIENTS) {
      logger.info(
        { file: `${config.DATA_DIR}/secrets/introspection-client` },
        'INTROSPECTION_CLIENTS is unset: generated one credential named "local"; send its contents as `authorization: Bearer <secret>` on Introspect',
      );
    }

    const redis = config.REDIS_URL ? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 }) : undefined;
    if (redis) {
      redis.on('error', (err) => logger.warn({ err: err.message }, 'redis error'));
      cleanup.push(() => redis.quit().catch(() => redis.disconnect()));
      await redisReady(redis, 5000, logger);
    }

    const userStore = new UserStore(orm);
    const users = new UserStateCache(userStore, { isLive: () => events.bus.isLive() }, config.INTROSPECTION_CACHE_TTL_MS, clock, logger);
    // Without NATS there is no mailer process: the same mailer code runs here, fed by the relay.
    const mailer = config.NATS_URL === undefined ? createInProcessMailer(config, { logger, stdout: opts.mailOutput, now: () => clock.nowMs() }) : undefined;
    if (mailer) {
      cleanup.push(() => mailer.stop());
      logger.info(
        { delivery: mailer.delivery },
        mailer.delivery === 'stdout'
          ? 'mailer: in-process (NATS_URL unset); SMTP_URL unset, so mail (reset links included) is printed to stdout, not sent'
          : 'mailer: in-process (NATS_URL unset); mail is sent through SMTP_URL',
      );
    }
    const events = await startEvents(config, { orm, logger, clock, ...(mailer ? { mail: mailer } : {}) });
    cleanup.push(() => events.stop());
    events.bus.onRevoked((userId) => users.invalidate(userId));
    // Broadcasts sent while this replica was disconnected are lost: start from a clean cache.
    events.bus.onLiveChange?.((live) => {
      if (live) users.clear();
    });

    const keys = await SigningKeyStore.open({
      orm,
      box,
      algorithm: config.SIGNING_ALGORITHM,
      rotationMs: config.SIGNING_KEY_ROTATION_HOURS * 3_600_000,
      accessTokenTtlMs: config.ACCESS_TOKEN_TTL_SECONDS * 1000,
      clock,
      logger,
    });
    cleanup.push(() => keys.close());
    const tokens = new AccessTokens(keys, { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS, clock, cacheSize: config.ACCESS_TOKEN_CACHE_SIZE });

    const hasher = new PasswordHasher({
      memoryKiB: config.ARGON2_MEMORY_KIB,
      timeCost: config.ARGON2_TIME_COST,
      parallelism: config.ARGON2_PARALLELISM,
      concurrency: config.HASH_CONCURRENCY,
      queueMax: config.HASH_QUEUE_MAX,
      queueTimeoutMs: config.HASH_QUEUE_TIMEOUT_MS,
      newPasswordConcurrency: config.HASH_NEW_PASSWORD_CONCURRENCY,
      newPasswordQueueMax: config.HASH_NEW_PASSWORD_QUEUE_MAX,
      maxBytes: config.PASSWORD_MAX_BYTES,
    });
    const policy = new PasswordPolicy({ minLength: config.PASSWORD_MIN_LENGTH, maxBytes: config.PASSWORD_MAX_BYTES, serviceName: 'latch' });
    const metrics = createMetrics();
    const breaches: PasswordBreachCheck = config.HIBP_ENABLED
      ? new HibpBreachCheck({
          baseUrl: config.HIBP_URL,
          timeoutMs: config.HIBP_TIMEOUT_MS,
          failureMode: config.HIBP_FAILURE_MODE,
          cacheSize: config.HIBP_CACHE_SIZE,
          cacheTtlMs: config.HIBP_CACHE_TTL_SECONDS * 1000,
          userAgent: BREACH_CHECK_USER_AGENT,
          clock,
          logger,
          count: breachCheckCounter(metrics.registry),
        })
      : breachCheckDisabled;
    if (!config.HIBP_ENABLED) logger.info('HIBP_ENABLED=false: new passwords are not checked against known breaches');
    const throttle = new LoginThrottle({
      redis,
      keyPrefix: `${config.REDIS_KEY_PREFIX}:`,
      maxFailuresPerAccountAndIp: config.LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_IP,
      maxFailuresPerAccount: config.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      accountLockSeconds: config.LOGIN_ACCOUNT_LOCK_SECONDS,
      maxFailuresPerIp: config.LOGIN_MAX_FAILURES_PER_IP,
      ipWindowSeconds: config.LOGIN_IP_WINDOW_SECONDS,
      logger,
    });
    const signup = new SignupThrottle({
      redis,
      keyPrefix: `${config.REDIS_KEY_PREFIX}:`,
      maxPerIp: config.SIGNUP_MAX_PER_IP,
      windowSeconds: config.SIGNUP_IP_WINDOW_SECONDS,
      refusalDelayMs: config.SIGNUP_REFUSAL_DELAY_MS,
      logger,
    });

    const sessions = new SessionService(
      orm,
      new SessionStore(orm),
      userStore,
      box,
      {
        idleTtlMs: config.REFRESH_TOKEN_IDLE_TTL_SECONDS * 1000,
        absoluteTtlMs: config.REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS * 1000,
        graceMs: config.REFRESH_GRACE_SECONDS * 1000,
      },
      clock,
      logger,
      (userId) => {
        users.invalidate(userId);
        events.relay.kick();
      },
    );
    const issuer = new SessionIssuer(orm, sessions, tokens);
    const mfa = new MfaService({
      orm,
      box,
      hasher,
      clock,
      logger,
      limiter: createMfaAttemptLimiter({
        redis,
        keyPrefix: `${config.REDIS_KEY_PREFIX}:`,
        maxFailures: config.MFA_MAX_FAILURES_PER_USER,
        lockSeconds: config.MFA_LOCK_SECONDS,
        logger,
      }),
    });
    const attempts = new PasswordAttempts({ orm, throttle, clock, logger, passwordMaxBytes: config.PASSWORD_MAX_BYTES });
    const emailVerification = new EmailVerification({
      orm,
      users: userStore,
      limits: new VerificationThrottle({
        redis,
        keyPrefix: `${config.REDIS_KEY_PREFIX}:`,
        maxPerUser: config.EMAIL_VERIFICATION_MAX_PER_USER,
        windowSeconds: config.EMAIL_VERIFICATION_WINDOW_SECONDS,
        logger,
      }),
      clock,
      logger,
      ttlMs: config.EMAIL_VERIFICATION_TTL_SECONDS * 1000,
      publicVerifyEmailUrl: publicVerifyEmailUrl(config),
      onEventQueued: () => events.relay.kick(),
      // GetCurrentUser and Introspect answer from this cache: email_verified must not stay stale here.
      onVerified: (userId) => users.invalidate(userId),
    });
    const accounts = new AccountService({
      orm,
      users: userStore,
      attempts,
      hasher,
      policy,
      breaches,
      signup,
      clock,
      signupEnabled: config.SIGNUP_ENABLED,
      // The first verification email commits with the account (E1).
      followUp: { inTransaction: (em, userId) => emailVerification.issueInTransaction(em, userId), committed: () => emailVerification.queued() },
    });
    const signIn = new SignInService({
      users: userStore,
      attempts,
      hasher,
      mfa,
      issuer,
      clock,
      logger,
      requireVerifiedEmail: config.REQUIRE_VERIFIED_EMAIL,
      onUnverifiedSignIn: (userId) => emailVerification.resendAfterRefusedSignIn(userId),
    });
    const passwordChange = new PasswordChange({ orm, users: userStore, accounts, sessions, issuer, hasher, policy, breaches, clock });
    // Reset requests do their per-account work after answering (docs/security.md F1).
    const resetQueue = new OffPathQueue(2, 1000, logger, 'password-reset-requests');
    cleanup.push(() => resetQueue.drain(config.SHUTDOWN_GRACE_MS));
    const passwordReset = new PasswordReset({
      orm,
      users: userStore,
      sessions,
      hasher,
      policy,
      breaches,
      limits: new ResetThrottle({
        redis,
        keyPrefix: `${config.REDIS_KEY_PREFIX}:`,
        maxPerIp: config.PASSWORD_RESET_MAX_PER_IP,
        maxPerEmail: config.PASSWORD_RESET_MAX_PER_EMAIL,
        windowSeconds: config.PASSWORD_RESET_WINDOW_SECONDS,
        logger,
      }),
      loginThrottle: throttle,
      queue: resetQueue,
      clock,
      logger,
      ttlMs: config.PASSWORD_RESET_TTL_SECONDS * 1000,
      publicResetUrl: publicResetUrl(config),
      onEventQueued: () => events.relay.kick(),
    });
    const admin = new AdminService(orm, userStore, sessions, mfa, clock);

    if (config.ADMIN_EMAIL && config.ADMIN_PASSWORD) {
      await bootstrapAdmin(orm, { email: config.ADMIN_EMAIL, password: config.ADMIN_PASSWORD }, { hasher, policy, breaches, clock, logger });
    }

    const introspection = new IntrospectionService(tokens, users);
    const callers = new CallerCredentials(introspectionClients);
    // One principal per active answer (itself reused while the token and the user's state are
    // unchanged), frozen because every call for that token shares it: what handlers build from it
    // (GetCurrentUser's response) can be reused too.
    const principalOf = oncePer(
      (t: ActiveToken): Principal =>
        Object.freeze({
          userId: t.sub,
          role: t.role,
          sessionId: t.sessionId,
          passwordMustChange: t.passwordMustChange,
          amr: t.amr,
          email: t.email,
          createdAtMs: t.createdAtMs,
          totpEnabled: t.totpEnabled,
          emailVerified: t.emailVerified,
        }),
    );
    const auth: Authenticator = {
      authenticateUser: (token) => andThen(introspection.authenticate(token), principalOf),
      authenticateCaller: (secret) => callers.authenticate(secret),
    };

    const accessLog = new AccessLogSummary({ logger, slowMs: config.ACCESS_LOG_SLOW_MS });
    // Pushed before the listeners start, so it runs after they closed: the last line counts every call.
    cleanup.push(() => accessLog.stop());
    const pipeline = { auth, logger, metrics, trustedProxies: config.TRUSTED_PROXIES, accessLog };
    const services = [
      { service: AuthRpc, impl: wrapService(AuthRpc, authHandlers({ accounts, signIn, passwordChange, passwordReset, emailVerification, sessions, issuer, mfa, accountChanged: (userId) => users.invalidate(userId) }), pipeline) },
      { service: IntrospectionRpc, impl: wrapService(IntrospectionRpc, introspectionHandlers({ introspection, jwks: () => keys.jwksJson() }), pipeline) },
      { service: AdminRpc, impl: wrapService(AdminRpc, adminHandlers(admin), pipeline) },
    ];

    const ready = async () => {
      try {
        await db.ping(1000);
        return true;
      } catch {
        return false;
      }
    };
    const grpc = await startGrpcServer({
      host: config.BIND_ADDRESS,
      port: config.GRPC_PORT,
      services,
      logger,
      health: { isServing: () => true },
      reflection: reflectionEnabled(config),
      handshakeTimeoutMs: config.GRPC_HANDSHAKE_TIMEOUT_MS,
    });
    cleanup.push(() => grpc.stop(config.SHUTDOWN_GRACE_MS));
    const http = await startHttpServer({
      host: config.BIND_ADDRESS,
      port: config.HTTP_PORT,
      services,
      corsOrigins: config.CORS_ORIGINS,
      refreshCookie: refreshCookieFromConfig(config, clock),
      logger,
      ready,
      jwks: () => keys.jwksJson(),
    });
    cleanup.push(() => http.stop(config.SHUTDOWN_GRACE_MS));
    const ops = await startOpsServer({ host: config.OPS_BIND_ADDRESS, port: config.OPS_PORT, logger, metricsRegistry: metrics.registry, ready });
    cleanup.push(() => ops.stop());
    logger.info(
      { grpcPort: grpc.port, httpPort: http.port, opsPort: ops.port, database: db.embedded ? 'embedded' : 'external', redis: !!redis, nats: !!config.NATS_URL },
      'latch identity service started',
    );

    let stopping: Promise<void> | undefined;
    return {
      grpcPort: grpc.port,
      httpPort: http.port,
      opsPort: ops.port,
      stop: () => (stopping ??= closeAll()),
      internals: { db, keys, tokens, sessions, accounts, hasher, users, events, introspectionClients },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
