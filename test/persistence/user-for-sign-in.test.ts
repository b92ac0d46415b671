import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserStore } from '../../src/identity/account/user-store.js';
import { toUserView } from '../../src/identity/account/user-view.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/** The sign-in lookup reads the users table without the ORM; it must see what the entity sees. */
describe('UserStore.findForSignIn', () => {
  let t: TestDatabase;
  let users: UserStore;
  beforeAll(async () => {
    t = await createTestDatabase();
    users = new UserStore(t.db.orm);
  });
  afterAll(() => t?.drop());

  const fieldsOf = (u: { id: string; email: string; passwordHash: string; disabled: boolean }) => ({
    id: u.id,
    email: u.email,
    passwordHash: u.passwordHash,
    disabled: u.disabled,
  });

  it('answers the same user, hash and view as the entity, and null for an unknown email', async () => {
    const now = Date.parse('2026-03-04T05:06:07.089Z');
    await users.insert({ email: 'sign-in@example.test', passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo', role: 'admin', passwordMustChange: true, emailVerified: true }, now);
    const entity = (await users.findByEmail('sign-in@example.test'))!;
    const row = (await users.findForSignIn('sign-in@example.test'))!;
    expect(fieldsOf(row)).toEqual(fieldsOf(entity));
    expect(toUserView(row)).toEqual(toUserView(entity));
    expect(toUserView(row)).toMatchObject({ role: 'admin', passwordMustChange: true, emailVerified: true, totpEnabled: false, createdAtMs: now });
    // citext: the column compares case-insensitively, whatever the caller passes.
    expect((await users.findForSignIn('Sign-In@Example.test'))?.id).toBe(entity.id);
    expect(await users.findForSignIn('nobody@example.test')).toBeNull();
  });

  it('reports TOTP only once a credential is confirmed, and a disabled account as disabled', async () => {
    const user = await users.insert({ email: 'totp@example.test', passwordHash: 'h', role: 'user', passwordMustChange: false }, Date.now());
    const em = t.db.orm.em.fork();
    await em.execute(`insert into totp_credentials (user_id, secret_enc) values (?, ?)`, [user.id, Buffer.from('sealed')]);
    expect((await users.findForSignIn('totp@example.test'))!.totpEnabled).toBe(false);
    await em.execute(`update totp_credentials set confirmed_at = now() where user_id = ?`, [user.id]);
    expect((await users.findForSignIn('totp@example.test'))!.totpEnabled).toBe(true);
    expect(toUserView((await users.findByEmail('totp@example.test'))!).totpEnabled).toBe(true);
    await em.execute(`update users set disabled = true where id = ?`, [user.id]);
    expect((await users.findForSignIn('totp@example.test'))!.disabled).toBe(true);
  });
});
