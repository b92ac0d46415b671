import { domainToASCII } from 'node:url';
import { invalidArgument } from '../../shared/errors.js';

/**
 * One canonical form per mailbox (docs/security.md X2): two spellings that look the same must not become
 * two accounts, and nothing invisible or markup-like is stored. Register, Login, the admin
 * bootstrap and the admin API all go through here, so they compare the same form.
 */

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets. */
const MAX_ADDRESS_OCTETS = 254;
/** RFC 5321 §4.5.3.1.1. */
const MAX_LOCAL_OCTETS = 64;
/** RFC 1035 §2.3.4 (253 without the root's trailing dot). */
const MAX_DOMAIN_OCTETS = 253;
const MAX_LABEL_OCTETS = 63;

/** Cc (NUL, DEL, C1), Cf (zero-width, soft hyphen, bidi overrides) and lone surrogates. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}]/u;
/**
 * RFC 5322 §3.2.3 atext in ASCII, plus (RFC 6531 §3.3) letters, marks and digits beyond ASCII.
 * Other non-ASCII symbols are refused: they are look-alikes more often than names.
 */
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\p{L}\p{M}\p{N}]+$/u;
/** RFC 1123 §2.1 LDH label, after IDNA has lower-cased it. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

const octets = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * The stored and compared form of an email address: trimmed, NFC, lower-cased local part, and
 * the domain as lower-case IDNA A-labels. Anything else is INVALID_ARGUMENT naming `field`.
 */
export function normalizeEmail(raw: string, field = 'email'): string {
  const fail = (message: string) => invalidArgument(field, message);
  const trimmed = raw.trim();
  if (trimmed.length === 0) throw fail('is required');
  // A huge input should not cost a normalisation pass; NFC can shorten, so the exact cap comes last.
  if (trimmed.length > 4 * MAX_ADDRESS_OCTETS) throw fail(`must be at most ${MAX_ADDRESS_OCTETS} bytes`);
  if (INVISIBLE.test(trimmed)) throw fail('must not contain control or invisible formatting characters');
  const nfc = trimmed.normalize('NFC');
  // Fullwidth "ａ", ligatures, superscripts: they would be a second spelling of an existing address.
  if (nfc.normalize('NFKC') !== nfc) {
    throw fail('must not contain compatibility characters such as fullwidth letters; type the plain characters');
  }

  const at = nfc.lastIndexOf('@');
  if (at <= 0 || at === nfc.length - 1) throw fail('is not an email address (expected local-part@domain)');
  const local = nfc.slice(0, at).toLowerCase().normalize('NFC');
  const domainInput = nfc.slice(at + 1);

  if (local.includes('@')) throw fail('must contain exactly one @');
  if (octets(local) > MAX_LOCAL_OCTETS) throw fail(`the part before @ must be at most ${MAX_LOCAL_OCTETS} bytes`);
  if (!local.split('.').every((atom) => ATOM.test(atom))) {
    throw fail('the part before @ may only contain letters, digits and !#$%&\'*+/=?^_`{|}~- with single dots between them');
  }

  const domain = asciiDomain(domainInput);
  if (domain === undefined) throw fail('has an invalid domain');
  if (octets(domain) > MAX_DOMAIN_OCTETS) throw fail(`the domain must be at most ${MAX_DOMAIN_OCTETS} bytes`);
  const labels = domain.split('.');
  if (labels.length < 2) throw fail('the domain must have at least two labels (example.com)');
  for (const label of labels) {
    if (label.length > MAX_LABEL_OCTETS) throw fail(`each domain label must be at most ${MAX_LABEL_OCTETS} characters`);
    if (!LDH_LABEL.test(label)) throw fail('domain labels may only contain letters, digits and inner hyphens');
  }
  // RFC 3696 §2: an all-numeric top-level label would be an address, not a name.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) throw fail('the domain must end in a name, not a number');

  const email = `${local}@${domain}`;
  if (octets(email) > MAX_ADDRESS_OCTETS) throw fail(`must be at most ${MAX_ADDRESS_OCTETS} bytes`);
  return email;
}

/** UTS 46 (what node:url applies to hosts) then lower-case; undefined when IDNA refuses it. */
function asciiDomain(domain: string): string | undefined {
  // The URL host parser also percent-decodes and maps dot look-alikes; none of that is an email domain.
  if (!/^[\p{L}\p{M}\p{N}.-]+$/u.test(domain)) return undefined;
  const ascii = domainToASCII(domain);
  return ascii === '' ? undefined : ascii.toLowerCase();
}
