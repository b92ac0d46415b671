import { commonPasswords } from './common-passwords.js';
import { codePointLength, exceedsByteCap, normalizePassword } from './normalize.js';
import { passwordCommon, passwordContext, passwordTooLong, passwordTooShort } from './password-errors.js';
import { isSimpleSequence, repeatedUnitLength } from './weak-patterns.js';

export interface PasswordPolicyOptions {
  /** Minimum length in code points after NFKC (PASSWORD_MIN_LENGTH). */
  minLength?: number;
  /** Cap on the UTF-8 size of the password as received (PASSWORD_MAX_BYTES). */
  maxBytes?: number;
  /** Passwords containing it are refused as context words. */
  serviceName?: string;
}

export interface PasswordContext {
  email?: string;
}

/** Context words shorter than this would refuse too many unrelated passwords. */
const MIN_CONTEXT_WORD = 4;

/**
 * New-password rules of docs/security.md P1/P2: length in code points after NFKC (min 15 by default,
 * anything up to the byte cap accepted, so well over 64), a byte cap checked before any other
 * work, the shipped common-password list plus trivially repeated or sequential passwords, and
 * context words. No composition rules. [NIST SP 800-63B rev 4 §3.1.1.2, ASVS 6.2]
 * The HIBP breach check is a separate step run by the caller after this one.
 */
export class PasswordPolicy {
  readonly minLength: number;
  readonly maxBytes: number;
  readonly serviceName: string;

  constructor(options: PasswordPolicyOptions = {}) {
    this.minLength = options.minLength ?? 15;
    this.maxBytes = options.maxBytes ?? 1024;
    this.serviceName = options.serviceName ?? 'latch';
    if (!Number.isInteger(this.minLength) || this.minLength < 1 || this.minLength > 64) {
      throw new RangeError('minLength must be an integer from 1 to 64');
    }
    // At least 64 code points must fit, and a code point takes up to 4 bytes.
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 256) {
      throw new RangeError('maxBytes must be an integer of at least 256');
    }
    commonPasswords();
  }

  /**
   * Throws LatchError invalid_argument (ERR_PASSWORD_TOO_LONG, _TOO_SHORT, _COMMON, _CONTEXT)
   * naming `field`, the request field the password came in.
   */
  check(password: string, context: PasswordContext = {}, field = 'password'): void {
    // Before normalising: NFKC of a huge input is the work this cap exists to avoid.
    if (exceedsByteCap(password, this.maxBytes)) throw passwordTooLong(field, this.maxBytes);

    const normalized = normalizePassword(password);
    if (codePointLength(normalized) < this.minLength) throw passwordTooShort(field, this.minLength);

    const lower = normalized.toLowerCase();
    if (this.isCommon(lower)) throw passwordCommon(field);
    if (this.contextWords(context).some((word) => lower.includes(word))) throw passwordContext(field);
  }

  private isCommon(lower: string): boolean {
    const list = commonPasswords();
    if (list.has(lower) || list.has(lower.replace(/\s+/gu, ''))) return true;

    const cps = Array.from(lower, (ch) => ch.codePointAt(0)!);
    if (isSimpleSequence(cps)) return true;
    const unit = repeatedUnitLength(cps);
    if (unit === cps.length) return false;
    // A short unit repeated to reach the minimum is only as strong as the unit.
    const unitText = String.fromCodePoint(...cps.slice(0, unit));
    return unit < this.minLength || list.has(unitText) || isSimpleSequence(cps.slice(0, unit));
  }

  private contextWords(context: PasswordContext): string[] {
    const words = [this.serviceName];
    if (context.email !== undefined) {
      const at = context.email.lastIndexOf('@');
      const local = at === -1 ? context.email : context.email.slice(0, at);
      words.push(local);
      // Sub-addressing: "alice+latch@" is still Alice's name.
      const plus = local.indexOf('+');
      if (plus > 0) words.push(local.slice(0, plus));
    }
    return words
      .map((w) => normalizePassword(w).toLowerCase())
      .filter((w) => codePointLength(w) >= MIN_CONTEXT_WORD);
  }
}
