import { randomBytes } from 'node:crypto';
import { create, fromBinary, isMessage, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ListUsersRequestSchema } from '../../../gen/identity/v1/admin_pb.js';
import { GetCurrentUserRequestSchema, LoginRequestSchema, RefreshRequestSchema } from '../../../gen/identity/v1/auth_pb.js';
import { IntrospectRequestSchema } from '../../../gen/identity/v1/introspection_pb.js';
import { decodeBinary, decodeFlatStrings } from './binary-request.js';

/** fromBinary's answer, or the fact that it throws. */
function reference(schema: DescMessage, bytes: Uint8Array): { message?: unknown; threw?: true } {
  try {
    return { message: fromBinary(schema, bytes) };
  } catch {
    return { threw: true };
  }
}

function ours(schema: DescMessage, bytes: Uint8Array): { message?: unknown; threw?: true } {
  try {
    return { message: decodeBinary(schema, bytes) };
  } catch {
    return { threw: true };
  }
}

const token = `${randomBytes(300).toString('base64url')}.${randomBytes(120).toString('base64url')}.${randomBytes(64).toString('base64url')}`;

describe('decodeBinary', () => {
  it('reads plain string-field requests itself, equal to fromBinary', () => {
    const cases: [DescMessage, Uint8Array][] = [
      [IntrospectRequestSchema, toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token, tokenTypeHint: 'access_token' }))],
      [IntrospectRequestSchema, toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token }))],
      [IntrospectRequestSchema, new Uint8Array(0)],
      [RefreshRequestSchema, toBinary(RefreshRequestSchema, create(RefreshRequestSchema, { refreshToken: 'x'.repeat(20_000) }))],
      [LoginRequestSchema, toBinary(LoginRequestSchema, create(LoginRequestSchema, { email: 'zoë@example.test', password: 'pässwörd 🔑👨‍👩‍👧 ok' }))],
      [GetCurrentUserRequestSchema, new Uint8Array(0)],
    ];
    for (const [schema, bytes] of cases) {
      const fast = decodeFlatStrings(schema, bytes);
      expect(fast, schema.typeName).toBeDefined();
      expect(isMessage(fast, schema)).toBe(true);
      expect(fast).toEqual(fromBinary(schema, bytes));
      expect(toBinary(schema, fast!)).toEqual(toBinary(schema, fromBinary(schema, bytes)));
    }
  });

  it('refuses invalid UTF-8 in a proto3 string, as fromBinary does', () => {
    for (const bad of [[0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x94], [0x61, 0x80, 0x62], [0xc0, 0xaf]]) {
      const bytes = Uint8Array.from([0x0a, bad.length, ...bad, 0x12, 2, 0x68, 0x69]);
      expect(() => fromBinary(IntrospectRequestSchema, bytes)).toThrow();
      expect(() => decodeFlatStrings(IntrospectRequestSchema, bytes)).toThrow();
      expect(ours(IntrospectRequestSchema, bytes)).toEqual({ threw: true });
    }
  });

  it('keeps the last of a field sent twice, as fromBinary does', () => {
    const bytes = Uint8Array.from([0x0a, 1, 0x61, 0x0a, 1, 0x62]);
    expect(decodeFlatStrings(IntrospectRequestSchema, bytes)?.token).toBe('b');
    expect(decodeBinary(IntrospectRequestSchema, bytes)).toEqual(fromBinary(IntrospectRequestSchema, bytes));
  });

  it('leaves every other encoding and message to fromBinary', () => {
    const unknownField = Uint8Array.from([0x0a, 1, 0x61, 0x1a, 1, 0x62]); // field 3 is not IntrospectRequest's
    const varintForString = Uint8Array.from([0x08, 0x01]);
    const truncated = Uint8Array.from([0x0a, 5, 0x61]);
    const twoByteTag = Uint8Array.from([0x82, 0x01, 1, 0x61]); // field 16
    const fieldZero = Uint8Array.from([0x02, 1, 0x61]);
    const hugeLength = Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (const bytes of [unknownField, varintForString, truncated, twoByteTag, fieldZero, hugeLength]) {
      expect(decodeFlatStrings(IntrospectRequestSchema, bytes), Buffer.from(bytes).toString('hex')).toBeUndefined();
      expect(ours(IntrospectRequestSchema, bytes)).toEqual(reference(IntrospectRequestSchema, bytes));
    }
    // The unknown field survives, as it does through fromBinary.
    expect(decodeBinary(IntrospectRequestSchema, unknownField).$unknown).toHaveLength(1);
    // A message with a non-string field is never read here.
    const list = toBinary(ListUsersRequestSchema, create(ListUsersRequestSchema, { pageToken: 'p', emailPrefix: 'a' }));
    expect(decodeFlatStrings(ListUsersRequestSchema, list)).toBeUndefined();
    expect(decodeBinary(ListUsersRequestSchema, list)).toEqual(fromBinary(ListUsersRequestSchema, list));
  });

  it('agrees with fromBinary on mangled encodings', () => {
    const good = toBinary(IntrospectRequestSchema, create(IntrospectRequestSchema, { token: 'héllo.wörld', tokenTypeHint: 'access_token' }));
    let fast = 0;
    for (let i = 0; i < 5000; i++) {
      const bytes = Uint8Array.from(good);
      const flips = 1 + (i % 3);
      for (let f = 0; f < flips; f++) bytes[randomBytes(2).readUInt16BE() % bytes.length] = randomBytes(1)[0]!;
      const cut = i % 7 === 0 ? bytes.subarray(0, randomBytes(1)[0]! % bytes.length) : bytes;
      try {
        if (decodeFlatStrings(IntrospectRequestSchema, cut) !== undefined) fast++;
      } catch {
        fast++; // refused on the fast path (invalid UTF-8)
      }
      expect(ours(IntrospectRequestSchema, cut)).toEqual(reference(IntrospectRequestSchema, cut));
    }
    // Both paths were exercised.
    expect(fast).toBeGreaterThan(100);
    expect(fast).toBeLessThan(5000);
  });
});
