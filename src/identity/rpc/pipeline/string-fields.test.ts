import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { ListUsersResponseSchema } from '../../../gen/identity/v1/admin_pb.js';
import { ChangePasswordRequestSchema, CompleteMfaRequestSchema, LoginRequestSchema } from '../../../gen/identity/v1/auth_pb.js';
import { IntrospectRequestSchema } from '../../../gen/identity/v1/introspection_pb.js';
import { LatchError } from '../../../shared/errors.js';
import { assertCleanStrings } from './string-fields.js';

function outcome(run: () => void): string {
  try {
    run();
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(LatchError);
    expect((e as LatchError).kind).toBe('invalid_argument');
    return (e as LatchError).message;
  }
}

const login = (email: string, password = 'pw') => () => assertCleanStrings(LoginRequestSchema, create(LoginRequestSchema, { email, password }));

describe('assertCleanStrings (docs/security.md X2)', () => {
  it('passes ordinary text, including non-Latin letters and emoji', () => {
    expect(outcome(login('ünïcödé@例子.广告', 'pässwörd 🔐'))).toBe('ok');
  });

  it.each([
    ['NUL', '\u0000'],
    ['TAB', '\t'],
    ['DEL', '\u007f'],
    ['a C1 control', '\u0085'],
    ['a zero-width space', '\u200b'],
    ['a zero-width joiner', '\u200d'],
    ['a soft hyphen', '\u00ad'],
    ['a bidi override', '\u202e'],
    ['a bidi isolate', '\u2066'],
    ['a BOM', '\ufeff'],
  ])('refuses %s in a non-password field, naming it', (_what, ch) => {
    expect(outcome(login(`a${ch}b@example.com`))).toBe('email: must not contain control or invisible formatting characters');
  });

  it('refuses the replacement character (what a decoder leaves of invalid UTF-8) and lone surrogates', () => {
    expect(outcome(login('a\ufffdb@example.com'))).toBe('email: is not valid UTF-8');
    expect(outcome(login('a\ud800b@example.com'))).toBe('email: is not well-formed Unicode (lone surrogate)');
    expect(outcome(login('a@example.com', 'x\ufffd'))).toBe('password: is not valid UTF-8');
  });

  it('lets passwords hold format characters (emoji ZWJ sequences) but not controls', () => {
    const change = (currentPassword: string, newPassword: string) => () =>
      assertCleanStrings(ChangePasswordRequestSchema, create(ChangePasswordRequestSchema, { currentPassword, newPassword }));
    expect(outcome(login('a@example.com', 'family 👩\u200d👩\u200d👧 of three'))).toBe('ok');
    expect(outcome(change('old', 'rtl \u202e text'))).toBe('ok');
    expect(outcome(change('old\u0000', 'new'))).toBe('current_password: must not contain control or invisible formatting characters');
    expect(outcome(change('old', 'new\n'))).toBe('new_password: must not contain control or invisible formatting characters');
  });

  it('looks into oneofs, nested messages and lists', () => {
    const mfa = (totpCode: string) => () =>
      assertCleanStrings(CompleteMfaRequestSchema, create(CompleteMfaRequestSchema, { challengeToken: 't', code: { case: 'totpCode', value: totpCode } }));
    expect(outcome(mfa('123456'))).toBe('ok');
    expect(outcome(mfa('123\u200b456'))).toBe('totp_code: must not contain control or invisible formatting characters');
    const users = create(ListUsersResponseSchema, { users: [{ email: 'a@example.com' }, { email: 'b\u0000@example.com' }] });
    expect(outcome(() => assertCleanStrings(ListUsersResponseSchema, users))).toBe('users[1].email: must not contain control or invisible formatting characters');
  });

  it('never echoes the offending value', () => {
    expect(outcome(login('secret-value\u0000@example.com'))).not.toContain('secret-value');
  });
});

describe('assertCleanStrings on flat messages (strings read without reflection)', () => {
  it('checks every string field of a request with scalar fields only, like the reflective walk', () => {
    const introspect = (token: string, tokenTypeHint = '') => () =>
      assertCleanStrings(IntrospectRequestSchema, create(IntrospectRequestSchema, { token, tokenTypeHint }));
    expect(outcome(introspect('eyJ.a-b_c.d'))).toBe('ok');
    expect(outcome(introspect(''))).toBe('ok');
    expect(outcome(introspect('eyJ\u0000x'))).toBe('token: must not contain control or invisible formatting characters');
    expect(outcome(introspect('ok', 'access\ufffd'))).toBe('token_type_hint: is not valid UTF-8');
    expect(outcome(introspect('a\ud800'))).toBe('token: is not well-formed Unicode (lone surrogate)');
  });
});
