import { randomBytes } from 'node:crypto';
import { argon2id, hash as argon2Hash, verify as argon2Verify } from 'argon2';
import { LatchError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { BoundedExecutor } from './bounded-executor.js';
import { exceedsByteCap, normalizePassword } from './normalize.js';
import { passwordTooLong } from './password-errors.js';
import { formatArgon2idPhc, parseArgon2Phc, type Argon2Params } from './phc.js';

export interface PasswordHasherOptions {
  /** ARGON2_MEMORY_KIB, ≥ 19456 (OWASP minimum for Argon2id with t=2, p=1). */
  memoryKiB: number;
  /** ARGON2_TIME_COST, ≥ 2. */
  timeCost: number;
  /** ARGON2_PARALLELISM, ≥ 1. */
  parallelism: number;
  /** HASH_CONCURRENCY: Argon2 runs at once on this replica. */
  concurrency: number;
  /** HASH_QUEUE_MAX: verifies allowed to wait for a slot; more are refused with ERR_HASHING_BUSY. */
  queueMax: number;
  /** HASH_NEW_PASSWORD_CONCURRENCY: of those runs, at most this many hash new secrets (default 1). */
  newPasswordConcurrency?: number;
  /** HASH_NEW_PASSWORD_QUEUE_MAX: new-secret hashes allowed to wait (default 16). */
  newPasswordQueueMax?: number;
  /** HASH_QUEUE_TIMEOUT_MS: longest wait for a slot before ERR_HASHING_BUSY. */
  queueTimeoutMs: number;
  /** PASSWORD_MAX_BYTES: larger input is refused before any hashing. */
  maxBytes: number;
  logger?: Logger;
}

export interface VerifyResult {
  ok: boolean;
  /** The password was right and the stored hash is weaker than the current parameters. */
  needsRehash: boolean;
}

const SALT_BYTES = 16;
const TAG_BYTES = 32;

/**
 * `verify` checks presented passwords (sign-in, current-password proofs, backup codes, the dummy
 * run for unknown emails) and always goes first; `new` hashes secrets to store (Register,
 * ChangePassword, bootstrap, hash upgrades, backup-code sets) within a smaller budget.
 */
export type HashLane = 'verify' | 'new';

export interface HashOptions {
  /** false: hash only if a slot is free now, else ERR_HASHING_BUSY at once (work that can wait). */
  wait?: boolean;
}

/**
 * Argon2id password hashing (docs/security.md P3, P4, A2, A5). Passwords are hashed in NFKC form; every
 * Argon2 run, including the dummy one for unknown accounts, goes through one bounded executor
 * with two lanes (see HashLane): hashing new secrets may hold at most newPasswordConcurrency of
 * the slots and has its own queue, and a waiting verify always gets the next free slot, so
 * however many sign-ups arrive, sign-in of existing users keeps the rest of the capacity.
 * node-argon2 runs the work on the libuv pool, so HASH_CONCURRENCY should not exceed its size
 * (UV_THREADPOOL_SIZE, default 4) or other pool users (DNS, fs, crypto) will stall behind it.
 */
export class PasswordHasher {
  private readonly executor: BoundedExecutor<HashLane>;
  private readonly runs: Record<HashLane, number> = { verify: 0, new: 0 };
  private readonly logger: Logger;
  /** A well-formed hash of nothing anyone knows, with the current parameters (see burn()). */
  private readonly dummyPhc: string;
  /** Stored hashes costlier than this are treated as corrupt rather than run. */
  private readonly maxStoredMemoryKiB: number;
  private readonly maxStoredTimeCost: number;

  constructor(private readonly options: PasswordHasherOptions) {
    const { memoryKiB, timeCost, parallelism, maxBytes } = options;
    if (!Number.isInteger(memoryKiB) || memoryKiB < 19456) throw new RangeError('memoryKiB must be ≥ 19456');
    if (!Number.isInteger(timeCost) || timeCost < 2) throw new RangeError('timeCost must be ≥ 2');
    if (!Number.isInteger(parallelism) || parallelism < 1) throw new RangeError('parallelism must be ≥ 1');
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError('maxBytes must be ≥ 1');
    this.logger = options.logger ?? silentLogger;
    this.executor = new BoundedExecutor<HashLane>({
      concurrency: options.concurrency,
      lanes: [
        { name: 'verify', queueMax: options.queueMax },
        // At least one slot stays with sign-in whenever there is more than one.
        {
          name: 'new',
          maxActive: Math.min(options.newPasswordConcurrency ?? 1, Math.max(1, options.concurrency - 1)),
          queueMax: options.newPasswordQueueMax ?? 16,
        },
      ],
      queueTimeoutMs: options.queueTimeoutMs,
      onBusy: (retryAfterMs, lane) =>
        new LatchError('unavailable', 'ERR_HASHING_BUSY', lane === 'verify' ? 'sign-in is busy, try again shortly' : 'the service is busy, try again shortly', {
          retryAfterMs,
        }),
    });
    this.dummyPhc = formatArgon2idPhc({
      memoryKiB,
      timeCost,
      parallelism,
      salt: randomBytes(SALT_BYTES),
      hash: randomBytes(TAG_BYTES),
    });
    this.maxStoredMemoryKiB = Math.max(4 * memoryKiB, 262_144);
    this.maxStoredTimeCost = Math.max(10 * timeCost, 20);
  }

  /**
   * Argon2id PHC string of the NFKC form of `password`, with a fresh 16-byte salt. Runs in the
   * new-secret lane: ERR_HASHING_BUSY when that lane's slots and queue are taken.
   */
  async hash(password: string, opts: HashOptions = {}): Promise<string> {
    const normalized = this.accept(password);
    const { memoryKiB, timeCost, parallelism } = this.options;
    const salt = randomBytes(SALT_BYTES);
    // Raw output, encoded here: node-argon2's own encoding puts the parameters out of order.
    const tag = await this.execute('new', opts, () =>
      argon2Hash(normalized, {
        type: argon2id,
        memoryCost: memoryKiB,
        timeCost,
        parallelism,
        hashLength: TAG_BYTES,
        salt,
        raw: true,
      }),
    );
    return formatArgon2idPhc({ memoryKiB, timeCost, parallelism, salt, hash: tag });
  }

  /**
   * Checks `password` against a stored PHC string (ours or another Argon2 library's). A corrupt
   * stored hash is logged and answers `ok: false` after the same work as a real verify, so it
   * neither leaks through timing nor surfaces as INTERNAL. Throws only ERR_PASSWORD_TOO_LONG and
   * ERR_HASHING_BUSY.
   */
  async verify(phc: string, password: string): Promise<VerifyResult> {
    const normalized = this.accept(password);
    const params = parseArgon2Phc(phc);
    if (params === undefined || !this.affordable(params)) {
      this.logger.error({ reason: params === undefined ? 'unparsable' : 'too costly' }, 'stored password hash rejected');
      await this.runVerify(this.dummyPhc, normalized);
      return { ok: false, needsRehash: false };
    }
    const ok = await this.runVerify(phc, normalized);
    return { ok, needsRehash: ok && this.isWeaker(params) };
  }

  /**
   * Spends what a verify with the current parameters spends, for sign-ins with no stored hash
   * (unknown email), so they cannot be told apart by timing. [docs/security.md P4, ASVS 6.3.8]
   */
  async burn(password: string): Promise<void> {
    await this.runVerify(this.dummyPhc, this.accept(password));
  }

  /**
   * Throws ERR_HASHING_BUSY at once when hash() would be refused right now: a sign-up flood is
   * then turned away before it costs a rate-limit round trip or a policy check (A5).
   */
  assertRoomForNew(): void {
    this.executor.assertRoom('new');
  }

  /** Argon2 runs in progress on this replica, in all lanes or one (metrics). */
  inFlight(lane?: HashLane): number {
    return this.executor.inFlight(lane);
  }

  /** Argon2 runs waiting for a slot, in all lanes or one (metrics). */
  queued(lane?: HashLane): number {
    return this.executor.queued(lane);
  }

  /** Argon2 runs started on this replica since start, in all lanes or one (metrics; tests count checks with it). */
  started(lane?: HashLane): number {
    return lane === undefined ? this.runs.verify + this.runs.new : this.runs[lane];
  }

  private execute<T>(lane: HashLane, opts: HashOptions, work: () => Promise<T>): Promise<T> {
    return this.executor.run(
      lane,
      () => {
        this.runs[lane]++;
        return work();
      },
      opts,
    );
  }

  private accept(password: string): string {
    if (exceedsByteCap(password, this.options.maxBytes)) throw passwordTooLong('password', this.options.maxBytes);
    return normalizePassword(password);
  }

  private runVerify(phc: string, normalized: string): Promise<boolean> {
    return this.execute('verify', {}, async () => {
      try {
        return await argon2Verify(phc, normalized);
      } catch (cause) {
        // node-argon2 throws on hashes it cannot decode; the message names no secret.
        this.logger.error({ err: cause }, 'stored password hash could not be verified');
        return false;
      }
    });
  }

  private affordable(p: Argon2Params): boolean {
    return p.memoryKiB <= this.maxStoredMemoryKiB && p.timeCost <= this.maxStoredTimeCost && p.parallelism <= 64;
  }

  /**
   * Weaker than configured (another Argon2 variant, an older version, lower costs, a short salt
   * or tag), or written in a parameter order other Argon2 libraries cannot read.
   */
  private isWeaker(p: Argon2Params): boolean {
    const { memoryKiB, timeCost, parallelism } = this.options;
    return (
      p.type !== 'argon2id' ||
      p.version !== 0x13 ||
      p.memoryKiB < memoryKiB ||
      p.timeCost < timeCost ||
      p.parallelism < parallelism ||
      p.saltBytes < 8 ||
      p.hashBytes < 16 ||
      !p.canonicalOrder
    );
  }
}
