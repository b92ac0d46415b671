import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BootstrapError } from '../../src/identity/admin/bootstrap.js';
import { startTestIdentity, uniqueEmail } from '../helpers/identity.js';
import { sha1Hex, startFakeRangeApi, type FakeRangeApi } from './breach-check-fake.js';

/**
 * B1 with P2: ADMIN_PASSWORD goes through the breach check Register runs before the bootstrap
 * creates the admin, against a local fake of the range API; a breached password stops start-up.
 */

const BREACHED = 'correct-horse-battery-staple-1987';
const CLEAN = 'bootstrap-quiet-orchard-5531';

describe('admin bootstrap and the password breach check', () => {
  let fake: FakeRangeApi;
  beforeAll(async () => {
    fake = await startFakeRangeApi();
    fake.breach(BREACHED);
  });
  afterAll(async () => {
    await fake?.stop();
  });

  const start = (password: string, failureMode: 'open' | 'closed') =>
    startTestIdentity({
      redis: false,
      nats: false,
      env: {
        ADMIN_EMAIL: uniqueEmail('admin'),
        ADMIN_PASSWORD: password,
        HIBP_ENABLED: 'true',
        HIBP_URL: fake.url,
        HIBP_TIMEOUT_MS: '500',
        HIBP_FAILURE_MODE: failureMode,
        HIBP_CACHE_SIZE: '0',
      },
    });

  it('refuses to start with a breached ADMIN_PASSWORD, naming the variable and not the password', async () => {
    fake.mode = 'answer';
    const before = fake.requests.length;
    const err = await start(BREACHED, 'open').then(
      async (t) => {
        await t.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BootstrapError);
    expect((err as Error).message).toMatch(/^ADMIN_PASSWORD rejected: .*data breaches/);
    expect((err as Error).message).not.toContain(BREACHED);
    // k-anonymity: only the 5-character prefix left the process.
    expect(fake.requests.slice(before).map((r) => r.url)).toEqual([`/range/${sha1Hex(BREACHED).slice(0, 5)}`]);
  });

  it('creates the admin with a clean ADMIN_PASSWORD after checking it', async () => {
    fake.mode = 'answer';
    const before = fake.requests.length;
    const t = await start(CLEAN, 'closed');
    try {
      expect(t.logs()).toContain('bootstrap admin created');
      expect(fake.requests.slice(before).map((r) => r.url)).toEqual([`/range/${sha1Hex(CLEAN).slice(0, 5)}`]);
    } finally {
      await t.stop();
    }
  });

  it('with the range API down, HIBP_FAILURE_MODE=closed refuses to start and open starts', async () => {
    fake.mode = 'unavailable';
    try {
      const err = await start(CLEAN, 'closed').then(
        async (t) => {
          await t.stop();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BootstrapError);
      expect((err as Error).message).toMatch(/ADMIN_PASSWORD could not be checked .*HIBP_FAILURE_MODE=closed/);

      const t = await start(CLEAN, 'open');
      try {
        expect(t.logs()).toContain('bootstrap admin created');
        expect(t.logs()).toContain('new password accepted unchecked (HIBP_FAILURE_MODE=open)');
      } finally {
        await t.stop();
      }
    } finally {
      fake.mode = 'answer';
    }
  });
});
