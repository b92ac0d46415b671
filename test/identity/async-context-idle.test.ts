import type { AsyncLocalStorage } from 'node:async_hooks';
import { TransactionContext } from '@mikro-orm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEnabled } from '../../src/identity/persistence/async-context.js';
import { startTestIdentity, TEST_PASSWORD, uniqueEmail, type TestIdentity } from '../helpers/identity.js';

/**
 * The service as built: once sign-up and sign-in (transactions, flushes) are done, MikroORM's
 * async context is off again, so the calls that follow (Introspect from memory) run without
 * Node's promise hook; and a transaction started afterwards still sees its own context.
 */
/** MikroORM's storage for the transaction in progress (private in its typings). */
const transactionStorage = (TransactionContext as unknown as { storage: AsyncLocalStorage<unknown> }).storage;

describe('MikroORM async context after database work', () => {
  let t: TestIdentity;

  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, nats: false });
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('is off once the writes of Register and Login have settled, and works again for the next ones', async () => {
    const email = uniqueEmail('alsidle');
    await t.grpc.auth.register({ email, password: TEST_PASSWORD });
    const login = await t.grpc.auth.login({ email, password: TEST_PASSWORD });
    expect(login.result.case).toBe('session');
    // Writes that outlive the answer (the outbox relay) settle on their own.
    await expect.poll(() => isEnabled(transactionStorage), { timeout: 5000 }).toBe(false);

    // Transactions still run in their own context: a second sign-in and a refresh work.
    const again = await t.connect.auth.login({ email, password: TEST_PASSWORD });
    expect(again.result.case).toBe('session');
    if (again.result.case !== 'session') return;
    const refreshed = await t.connect.auth.refresh({ refreshToken: again.result.value.refreshToken });
    expect(refreshed.session?.accessToken).toBeTruthy();
    await expect.poll(() => isEnabled(transactionStorage), { timeout: 5000 }).toBe(false);
  });
});
