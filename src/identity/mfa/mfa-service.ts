import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { SecretBox } from '../../shared/secret-box.js';
import type { AttemptLimiter, Reservation } from '../abuse/attempt-limiter.js';
import { enqueue } from '../events/outbox-store.js';
import { securityAlert, type SecurityAlertKind } from '../events/security-alert.js';
import type { PasswordHasher } from '../password/hasher.js';
import { BACKUP_CODE_COUNT, formatBackupCode, newBackupCodeSet, normalizeBackupCode } from './backup-code.js';
import { base32Decode } from './base32.js';
import { hashChallengeToken, looksLikeChallengeToken, newChallengeToken } from './challenge-token.js';
import {
  enrollmentNotStarted,
  invalidChallenge,
  invalidMfaCode,
  tooManyMfaAttempts,
  totpAlreadyEnabled,
  totpNotEnabled,
} from './mfa-errors.js';
import * as store from './mfa-store.js';
import { MAX_CODE_CHARS, parseBackupCode, parseProof, parseTotpCode, type Proof } from './mfa-input.js';
import { generateTotpSecret, isWellFormedTotpCode, matchStep, otpauthUri, TOTP_SECRET_BYTES } from './totp.js';

export interface MfaClient {
  ip: string;
  userAgent: string;
}

export type MfaProof = { totpCode: string } | { backupCode: string };

export interface MfaServiceDeps {
  orm: MikroORM;
  /** The service's secret-encryption key; TOTP secrets are sealed with aad `totp:<userId>` (M2). */
  box: SecretBox;
  /** Argon2id for backup codes (M5), sharing the bounded hashing queue (A2). */
  hasher: PasswordHasher;
  clock: Clock;
  logger: Logger;
  /** Code checks per user (A3, A4), keyed by user id, reserved before each check; see createMfaAttemptLimiter. */
  limiter: AttemptLimiter;
  /** Shown in authenticator apps. Default "Latch". */
  issuer?: string;
  /** Challenge lifetime, at most 5 minutes (M6). Default 5 minutes. */
  challengeTtlMs?: number;
  /** Codes tried against one challenge before it is burned (A3). Default 5. */
  maxChallengeAttempts?: number;
}

export interface ChallengeIssued {
  token: string;
  expiresAtMs: number;
  /** What CompleteMfa accepts, for MfaChallenge.methods. */
  methods: string[];
}

export interface ChallengeCompleted {
  userId: string;
  /**
   * RFC 8176 methods: the challenge's (normally ["pwd"]) plus "otp". RFC 8176 has no value for
   * recovery codes; they are one-time passwords, so a backup code also counts as "otp", and
   * `method` says which one it was for logs and audits.
   */
  amr: string[];
  method: 'totp' | 'backup_code';
}

const MAX_CHALLENGE_TTL_MS = 5 * 60_000;
export const MFA_METHODS = ['totp', 'backup_code'];

type Claim = { kind: 'totp'; step: bigint; secretEnc: Buffer } | { kind: 'backup'; id: string };
type Held = Extract<Reservation, { granted: true }>;

/** One code check: whose, where from, and the place it holds in the user's budget (A4). */
interface Attempt {
  userId: string;
  email: string;
  client: MfaClient;
  /** Whether the caller is signed in (see invalidMfaCode). */
  signedIn: boolean;
  held: Held;
}

/**
 * TOTP (RFC 6238) and backup codes as a second factor, and the sign-in step between a correct
 * password and a session. Proofs are checked without writing, then claimed with a conditional
 * UPDATE inside the transaction that makes the change they authorise, so a code is used exactly
 * once and only if the change commits.
 */
export class MfaService {
  private readonly issuer: string;
  private readonly challengeTtlMs: number;
  private readonly maxChallengeAttempts: number;

  constructor(private readonly d: MfaServiceDeps) {
    this.issuer = d.issuer ?? 'Latch';
    this.challengeTtlMs = d.challengeTtlMs ?? MAX_CHALLENGE_TTL_MS;
    this.maxChallengeAttempts = d.maxChallengeAttempts ?? 5;
    if (this.challengeTtlMs <= 0 || this.challengeTtlMs > MAX_CHALLENGE_TTL_MS) throw new RangeError('challengeTtlMs must be in (0, 5 min]');
    if (!Number.isInteger(this.maxChallengeAttempts) || this.maxChallengeAttempts < 1) throw new RangeError('maxChallengeAttempts must be ≥ 1');
  }

  async isEnabled(userId: string): Promise<boolean> {
    const cred = await store.readCredential(this.d.orm.em.fork(), userId);
    return cred?.confirmed === true;
  }

  /** Starts (or restarts) enrollment with a new secret; the secret is returned only here (M2). */
  async beginEnrollment(userId: string, email: string): Promise<{ secret: string; otpauthUri: string }> {
    const secret = generateTotpSecret();
    const sealed = this.d.box.seal(base32Decode(secret), aad(userId));
    const stored = await store.upsertPendingCredential(this.d.orm.em.fork(), userId, sealed, this.now());
    if (!stored) throw totpAlreadyEnabled();
    return { secret, otpauthUri: otpauthUri({ issuer: this.issuer, account: email, secret }) };
  }

  /** M4: activates TOTP with a valid code, whose step is consumed; returns the backup codes, shown once. */
  async confirmEnrollment(userId: string, email: string, code: string, client: MfaClient): Promise<string[]> {
    const totpCode = parseTotpCode(code, 'code');
    const cred = await store.readCredential(this.d.orm.em.fork(), userId);
    if (!cred) throw enrollmentNotStarted();
    if (cred.confirmed) throw totpAlreadyEnabled();
    const attempt = await this.reserve(userId, email, client, true);
    const step = matchStep(this.open(userId, cred.secretEnc), totpCode, this.d.clock.nowMs(), 1, { after: cred.lastUsedStep });
    if (step === null) return this.wrongCode(attempt);
    // Hashed only after a correct code, so wrong guesses cost no Argon2 work.
    const { codes, hashes } = await this.newCodeSet();
    const confirmed = await this.d.orm.em.fork().transactional(async (em) => {
      const now = this.now();
      if (!(await store.claimStep(em, userId, cred.secretEnc, step, { confirmAt: now }))) return false;
      await store.replaceBackupCodes(em, userId, hashes, now);
      this.alert(em, 'totp_enabled', userId, email, client);
      return true;
    });
    if (!confirmed) return this.wrongCode(attempt);
    await this.d.limiter.reset(userId);
    this.d.logger.info({ userId }, 'totp enabled');
    return codes;
  }

  /**
   * M3: true when `code` is good for a step after the last accepted one, which it then becomes
   * (inside `em`'s transaction). Replays fail on every replica and survive a Redis flush.
   */
  async verifyTotp(em: EntityManager, userId: string, code: string): Promise<boolean> {
    const claim = await this.findTotp(em, userId, code.replace(/\s+/g, ''));
    return claim !== null && (await store.claimStep(em, userId, claim.secretEnc, claim.step));
  }

  /** M5: true when `code` is an unused backup code of the user, which it then marks used, with an alert. */
  async verifyBackupCode(em: EntityManager, userId: string, code: string, alert: { email: string; client: MfaClient }): Promise<boolean> {
    const canonical = normalizeBackupCode(code.slice(0, MAX_CODE_CHARS));
    if (canonical === null) return false;
    const id = await this.findBackupCode(em, userId, canonical);
    return id !== null && (await this.claim(em, userId, { kind: 'backup', id }, alert.email, alert.client));
  }

  /**
   * Turns TOTP off and deletes the backup codes. The caller checks the current password first.
   * `code` is a TOTP code or, for a user who lost the device, a backup code.
   */
  async disable(userId: string, email: string, code: string, client: MfaClient): Promise<void> {
    const proof = parseProof(code);
    if (!(await this.isEnabled(userId))) throw totpNotEnabled();
    const attempt = await this.reserve(userId, email, client, true);
    const claim = await this.findClaim(attempt, proof);
    const done = await this.d.orm.em.fork().transactional(async (em) => {
      if (!(await this.claim(em, userId, claim, email, client))) return false;
      await store.deleteCredential(em, userId);
      this.alert(em, 'totp_disabled', userId, email, client);
      return true;
    });
    if (!done) return this.wrongCode(attempt);
    await this.d.limiter.reset(userId);
    this.d.logger.info({ userId }, 'totp disabled');
  }

  /** A new set of 10 codes; the old set stops working (M5). `code` as for disable(). */
  async regenerateBackupCodes(userId: string, email: string, code: string, client: MfaClient): Promise<string[]> {
    const proof = parseProof(code);
    if (!(await this.isEnabled(userId))) throw totpNotEnabled();
    const attempt = await this.reserve(userId, email, client, true);
    const claim = await this.findClaim(attempt, proof);
    const { codes, hashes } = await this.newCodeSet();
    const done = await this.d.orm.em.fork().transactional(async (em) => {
      if (!(await this.claim(em, userId, claim, email, client))) return false;
      await store.replaceBackupCodes(em, userId, hashes, this.now());
      this.alert(em, 'backup_codes_regenerated', userId, email, client);
      return true;
    });
    if (!done) return this.wrongCode(attempt);
    await this.d.limiter.reset(userId);
    this.d.logger.info({ userId }, 'backup codes regenerated');
    return codes;
  }

  /**
   * M7: an administrator's reset of the user's second factor, inside the caller's transaction:
   * the credential (confirmed or pending), the backup codes and open challenges go, with a
   * SECOND_FACTOR_RESET alert when there was anything to remove. Call afterReset() after commit.
   */
  async resetIn(em: EntityManager, userId: string, email: string, client: MfaClient): Promise<boolean> {
    const removed = await store.deleteSecondFactor(em, userId);
    if (removed) this.alert(em, 'second_factor_reset', userId, email, client);
    return removed;
  }

  /** After a reset has committed. The user starts with a fresh budget: enrolling again checks codes too. */
  async afterReset(userId: string, byAdmin: string, removed: boolean): Promise<void> {
    await this.d.limiter.reset(userId);
    this.d.logger.info({ userId, byAdmin, removed }, 'second factor reset by an administrator');
  }

  /**
   * After a correct password for a user with TOTP: a single-use challenge token good for five
   * minutes, only at CompleteMfa (M6). Pass Login's transaction as `em` to write it there.
   */
  async createChallenge(em: EntityManager | undefined, userId: string, amr: string[], client: MfaClient): Promise<ChallengeIssued> {
    const token = newChallengeToken();
    const now = this.d.clock.nowMs();
    const expiresAtMs = now + this.challengeTtlMs;
    await store.insertChallenge(em ?? this.d.orm.em.fork(), {
      userId,
      tokenHash: hashChallengeToken(token),
      amr,
      expiresAt: new Date(expiresAtMs),
      now: new Date(now),
      clientIp: client.ip,
      userAgent: client.userAgent.slice(0, 512),
    });
    return { token, expiresAtMs, methods: [...MFA_METHODS] };
  }

  /** CompleteMfa: the second factor against a live challenge, which is then spent (M6, A3). */
  async completeChallenge(token: string, proof: MfaProof, client: MfaClient): Promise<ChallengeCompleted> {
    const parsed: Proof =
      'totpCode' in proof
        ? { kind: 'totp', code: parseTotpCode(proof.totpCode, 'totp_code') }
        : { kind: 'backup', canonical: parseBackupCode(proof.backupCode) };
    if (!looksLikeChallengeToken(token)) throw invalidChallenge();
    const em0 = this.d.orm.em.fork();
    const challenge = await store.findLiveChallenge(em0, hashChallengeToken(token), this.now(), this.maxChallengeAttempts);
    if (!challenge) throw invalidChallenge();
    // The challenge is charged first, so that every place taken in the user's budget below is
    // a code actually checked, never one spent on a challenge that just died.
    if (!(await store.chargeChallengeAttempt(em0, challenge.id, this.now(), this.maxChallengeAttempts))) throw invalidChallenge();
    const attempt = await this.reserve(challenge.userId, challenge.email, client, false);
    const claim = await this.findClaim(attempt, parsed);
    const outcome = await this.d.orm.em.fork().transactional(async (em) => {
      if (!(await store.consumeChallenge(em, challenge.id, this.now()))) return 'challenge' as const;
      if (!(await this.claim(em, challenge.userId, claim, challenge.email, client))) {
        // Rolls the challenge back to unconsumed; the attempt stays charged.
        throw new ClaimLost();
      }
      return 'ok' as const;
    }).catch((e: unknown) => {
      if (e instanceof ClaimLost) return 'code' as const;
      throw e;
    });
    if (outcome === 'challenge') throw invalidChallenge();
    if (outcome === 'code') return this.wrongCode(attempt);
    await this.d.limiter.reset(challenge.userId);
    const amr = [...new Set([...challenge.amr, 'otp'])];
    return { userId: challenge.userId, amr, method: parsed.kind === 'totp' ? 'totp' : 'backup_code' };
  }

  // --- proofs -------------------------------------------------------------------------------

  /** Checks a proof without writing; a wrong one is counted and thrown here. */
  private async findClaim(attempt: Attempt, proof: Proof): Promise<Claim> {
    const { userId } = attempt;
    const em = this.d.orm.em.fork();
    const claim =
      proof.kind === 'totp'
        ? await this.findTotp(em, userId, proof.code)
        : await this.findBackupCode(em, userId, proof.canonical).then((id) => (id === null ? null : { kind: 'backup' as const, id }));
    if (claim === null) return this.wrongCode(attempt);
    return claim;
  }

  private async findTotp(em: EntityManager, userId: string, code: string): Promise<Extract<Claim, { kind: 'totp' }> | null> {
    if (!isWellFormedTotpCode(code)) return null;
    const cred = await store.readCredential(em, userId);
    if (!cred?.confirmed) return null;
    const step = matchStep(this.open(userId, cred.secretEnc), code, this.d.clock.nowMs(), 1, { after: cred.lastUsedStep });
    return step === null ? null : { kind: 'totp', step, secretEnc: cred.secretEnc };
  }

  /**
   * M5: always BACKUP_CODE_COUNT Argon2id verifies (burn() standing in for used or missing codes),
   * run together on the bounded queue, so the time taken does not say which code matched or how
   * many are left.
   */
  private async findBackupCode(em: EntityManager, userId: string, canonical: string): Promise<string | null> {
    const rows = await store.unusedBackupCodes(em, userId);
    const slots = Math.max(rows.length, BACKUP_CODE_COUNT);
    const results = await Promise.all(
      Array.from({ length: slots }, (_, i) => {
        const row = rows[i];
        return row === undefined ? this.d.hasher.burn(canonical).then(() => false) : this.d.hasher.verify(row.hash, canonical).then((r) => r.ok);
      }),
    );
    const index = results.indexOf(true);
    return index < 0 ? null : rows[index]!.id;
  }

  private async claim(em: EntityManager, userId: string, claim: Claim, email: string, client: MfaClient): Promise<boolean> {
    if (claim.kind === 'totp') return store.claimStep(em, userId, claim.secretEnc, claim.step);
    if (!(await store.claimBackupCode(em, claim.id, this.now()))) return false;
    this.alert(em, 'backup_code_used', userId, email, client);
    return true;
  }

  // --- helpers ------------------------------------------------------------------------------

  /**
   * A4: takes a place in the user's budget BEFORE the code is checked, in one atomic increment,
   * so N parallel guesses get at most the limit checked. The place counts as a failure until a
   * success resets the budget; an attempt that ends in an error of ours keeps counting (fails
   * closed), because giving places back would let two attempts share the last one.
   */
  private async reserve(userId: string, email: string, client: MfaClient, signedIn: boolean): Promise<Attempt> {
    const held = await this.d.limiter.reserve(userId);
    if (!held.granted) throw tooManyMfaAttempts(held.retryAfterMs);
    return { userId, email, client, signedIn, held };
  }

  private async wrongCode(attempt: Attempt): Promise<never> {
    const { userId } = attempt;
    this.d.logger.warn({ userId }, 'wrong second-factor code');
    if (await this.d.limiter.failed(userId, attempt.held)) await this.locked(attempt);
    throw invalidMfaCode(attempt.signedIn);
  }

  /** A6: the owner hears of the lock once; exactly one failure per window is the locking one. */
  private async locked({ userId, email, client }: Attempt): Promise<void> {
    this.d.logger.warn({ userId, clientIp: client.ip }, 'second factor locked after too many wrong codes');
    await this.d.orm.em
      .fork()
      .transactional(async (em) => this.alert(em, 'mfa_locked', userId, email, client))
      .catch((err: unknown) => this.d.logger.error({ err, userId }, 'MFA_LOCKED alert could not be queued'));
  }

  /**
   * One hash at a time: a set takes one place in the new-secret hashing queue instead of ten
   * (A5), and no hash of the set waits behind its own siblings past the queue timeout.
   */
  private async newCodeSet(): Promise<{ codes: string[]; hashes: string[] }> {
    const canonical = newBackupCodeSet();
    const hashes: string[] = [];
    for (const c of canonical) hashes.push(await this.d.hasher.hash(c));
    return { codes: canonical.map(formatBackupCode), hashes };
  }

  private open(userId: string, sealed: Buffer): Buffer {
    const secret = this.d.box.open(sealed, aad(userId));
    if (secret.length !== TOTP_SECRET_BYTES) throw new Error('stored TOTP secret has an unexpected length');
    return secret;
  }

  private alert(em: EntityManager, kind: SecurityAlertKind, userId: string, email: string, client: MfaClient): void {
    const event = securityAlert({ userId, email, kind, clientIp: client.ip, userAgent: client.userAgent, occurredAtMs: this.d.clock.nowMs() });
    enqueue(em, event, this.d.clock);
  }

  private now(): Date {
    return new Date(this.d.clock.nowMs());
  }
}

/** Thrown inside a transaction to roll it back when the code lost a race. */
class ClaimLost extends Error {}

const aad = (userId: string) => `totp:${userId}`;
