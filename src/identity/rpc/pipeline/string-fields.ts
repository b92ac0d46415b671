import { ScalarType, type DescField, type DescMessage, type Message } from '@bufbuild/protobuf';
import { reflect, type ReflectMessage } from '@bufbuild/protobuf/reflect';
import { invalidArgument } from '../../../shared/errors.js';
import { oncePer } from '../../../shared/once-per.js';

/**
 * docs/security.md X2 at the edge: every string in every request, on every transport, before any
 * handler sees it. Handlers and domain code may then assume well-formed, visible text.
 *
 * Invalid UTF-8: protobuf-es verifies proto3 strings in binary requests, so such a request does
 * not decode at all (INVALID_ARGUMENT before this step). JSON bodies are decoded replacing, so a
 * bad sequence arrives here as U+FFFD; checking for U+FFFD covers every JSON codec in one place,
 * and a client that sends a literal U+FFFD is refused as well, which costs nothing real. JSON
 * `\ud800` escapes arrive as lone surrogates and are refused with them.
 *
 * Control characters (Cc: NUL, C0, DEL, C1) are refused everywhere. Format characters (Cf:
 * zero-width space/joiner, soft hyphen, bidi overrides) are refused everywhere except in
 * passwords: a password is never displayed or compared as text, and emoji sequences joined by
 * ZWJ are legitimate password material (NIST SP 800-63B §5.1.1.2 allows any Unicode).
 */

const REPLACEMENT = '\ufffd';
const NOT_WELL_FORMED = /[\p{Cs}\ufffd]/u;
const CONTROL = /\p{Cc}/u;
const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}]/u;
const ANY_SUSPECT = /[\p{Cc}\p{Cf}\p{Cs}\ufffd]/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Proto field names whose values are passwords (auth.proto, admin bootstrap). */
const isPasswordField = (field: DescField) => field.name === 'password' || field.name.endsWith('_password');

/** Throws INVALID_ARGUMENT naming the first offending field (as `parent.child[2]`). */
export function assertCleanStrings(schema: DescMessage, message: Message): void {
  const flat = flatStringFields(schema);
  if (flat === null) {
    walk(reflect(schema, message), '');
    return;
  }
  // Same checks, same order, read straight off the message: no reflection object per call.
  const fields = message as unknown as Record<string, unknown>;
  for (const field of flat) {
    const value = fields[field.localName];
    if (typeof value === 'string' && value !== '') check(field, field.name, value);
  }
}

/**
 * For a message whose fields are all scalars outside any oneof (Introspect's request, most
 * requests), its string fields: each lives in the message under its localName. Null for the
 * rest, which are walked by reflection. Worked out once per message type.
 */
const flatStringFields = oncePer((schema: DescMessage): readonly DescField[] | null => {
  const flat = schema.oneofs.length === 0 && schema.fields.every((f) => (f.fieldKind === 'scalar' || f.fieldKind === 'enum') && f.oneof === undefined);
  return flat ? schema.fields.filter((f) => f.fieldKind === 'scalar' && f.scalar === ScalarType.STRING) : null;
});

function walk(msg: ReflectMessage, prefix: string): void {
  for (const field of msg.fields) {
    if (!msg.isSet(field)) continue;
    const path = prefix + field.name;
    switch (field.fieldKind) {
      case 'scalar':
        if (field.scalar === ScalarType.STRING) check(field, path, msg.get(field) as string);
        break;
      case 'message':
        walk(msg.get(field) as ReflectMessage, `${path}.`);
        break;
      case 'list': {
        let i = 0;
        for (const item of msg.get(field)) {
          const at = `${path}[${i++}]`;
          if (field.listKind === 'message') walk(item as ReflectMessage, `${at}.`);
          else if (field.listKind === 'scalar' && field.scalar === ScalarType.STRING) check(field, at, item as string);
        }
        break;
      }
      case 'map':
        // Keys are caller data: the path never echoes them.
        for (const [key, value] of msg.get(field)) {
          if (typeof key === 'string') check(field, `${path}{key}`, key);
          if (field.mapKind === 'message') walk(value as ReflectMessage, `${path}{value}.`);
          else if (field.mapKind === 'scalar' && field.scalar === ScalarType.STRING) check(field, `${path}{value}`, value as string);
        }
        break;
      case 'enum':
        break;
    }
  }
}

function check(field: DescField, path: string, value: string): void {
  // Printable ASCII (tokens, most emails) is clean; only other text needs the Unicode classes.
  if (PRINTABLE_ASCII.test(value) || !ANY_SUSPECT.test(value)) return;
  if (NOT_WELL_FORMED.test(value)) {
    throw invalidArgument(path, value.includes(REPLACEMENT) ? 'is not valid UTF-8' : 'is not well-formed Unicode (lone surrogate)');
  }
  if ((isPasswordField(field) ? CONTROL : CONTROL_OR_FORMAT).test(value)) {
    throw invalidArgument(path, 'must not contain control or invisible formatting characters');
  }
}
