import { create, fromBinary, ScalarType, type DescField, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { getTextEncoding } from '@bufbuild/protobuf/wire';
import { FeatureSet_FieldPresence } from '@bufbuild/protobuf/wkt';
import { oncePer } from '../../../shared/once-per.js';

/**
 * A request message from its protobuf binary encoding: what fromBinary returns, bytes for bytes.
 *
 * Most requests (Introspect's, Refresh's, Login's) are a few plain string fields numbered 1 to 15.
 * Their encoding is a run of one-byte tags, lengths and UTF-8, which this reads directly. On
 * Introspect that is about a microsecond less than fromBinary's reflection per call. Anything else
 * (another message shape, an unknown field, another wire type, a length past the end, a repeated
 * or nested field) goes to fromBinary, which decides as it always does, errors included. The
 * strings are decoded by protobuf-es's own decoder with each field's own UTF-8 rule: proto3
 * strings are verified, so invalid UTF-8 throws the same error fromBinary throws.
 */
export function decodeBinary<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  return decodeFlatStrings(schema, bytes) ?? fromBinary(schema, bytes);
}

/** The message when its shape and encoding are the plain kind described above; otherwise undefined. */
export function decodeFlatStrings<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> | undefined {
  const fields = stringFields(schema);
  if (fields === null) return undefined;
  const message = create(schema) as Record<string, unknown>;
  const end = bytes.length;
  let pos = 0;
  while (pos < end) {
    const tag = bytes[pos++]!;
    // One-byte tag (field 1 to 15), wire type 2 (length-delimited), a field of this message.
    if ((tag & 0x87) !== 2) return undefined;
    const field = fields[tag >>> 3];
    if (field === undefined) return undefined;
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= end || shift > 21) return undefined;
      const b = bytes[pos++]!;
      len |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
    }
    if (len > end - pos) return undefined;
    // Last one wins, as in fromBinary for a singular field.
    message[field.localName] = utf8.decodeUtf8(bytes.subarray(pos, pos + len), field.utf8Validation);
    pos += len;
  }
  return message as MessageShape<Desc>;
}

const utf8 = getTextEncoding();

/**
 * The fields by number, for a message whose every field is a singular string with implicit
 * presence numbered 1 to 15 (no oneof, no explicit presence); null for any other message.
 */
const stringFields = oncePer((schema: DescMessage): readonly (DescField | undefined)[] | null => {
  if (schema.oneofs.length > 0) return null;
  const fields: (DescField | undefined)[] = new Array<DescField | undefined>(16).fill(undefined);
  for (const f of schema.fields) {
    const plain = f.fieldKind === 'scalar' && f.scalar === ScalarType.STRING && f.oneof === undefined && f.presence === FeatureSet_FieldPresence.IMPLICIT;
    if (!plain || f.number < 1 || f.number > 15) return null;
    fields[f.number] = f;
  }
  return fields;
});
