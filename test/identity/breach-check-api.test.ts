import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/shared/clock.js';
import { isLatchError, type LatchError } from '../../src/shared/errors.js';
import { BREACH_CHECK_USER_AGENT, HibpBreachCheck, type HibpBreachCheckOptions } from '../../src/identity/password/breach-check.js';
import { breachCheckCounter } from '../../src/identity/password/breach-check-metrics.js';
import { capturingLogger } from '../events/support.js';
import { sha1Hex, startFakeRangeApi, type FakeRangeApi } from './breach-check-fake.js';

/** docs/security.md P2: the breach check against a local fake of the HIBP range API. */

const BREACHED = 'copper-lantern-drifts-8812';
const CLEAN = 'quiet-meadow-follows-3307';

let fake: FakeRangeApi;
beforeAll(async () => {
  fake = await startFakeRangeApi();
  fake.breach(BREACHED);
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.mode = 'answer';
  fake.requests.length = 0;
});

function build(overrides: Partial<HibpBreachCheckOptions> = {}) {
  const registry = new Registry();
  const log = capturingLogger('debug');
  const clock = new ManualClock();
  const check = new HibpBreachCheck({
    baseUrl: fake.url,
    timeoutMs: 300,
    failureMode: 'open',
    cacheSize: 100,
    cacheTtlMs: 60_000,
    userAgent: BREACH_CHECK_USER_AGENT,
    clock,
    logger: log.logger,
    count: breachCheckCounter(registry),
    ...overrides,
  });
  const counted = async () => {
    const metric = await registry.getSingleMetric('latch_breach_check_total')!.get();
    return Object.fromEntries(metric.values.map((v) => [`${v.labels.outcome}/${v.labels.source}`, v.value]));
  };
  return { check, clock, counted, logs: log.text };
}

async function refusal(p: Promise<void>): Promise<LatchError> {
  const e = await p.then(() => new Error('accepted'), (x: unknown) => x);
  if (!isLatchError(e)) throw e;
  return e;
}

describe('HibpBreachCheck', () => {
  it('refuses a password whose suffix the range lists, naming the field', async () => {
    const { check, counted } = build();
    const e = await refusal(check.assertNotBreached(BREACHED, 'new_password'));
    expect(e.kind).toBe('invalid_argument');
    expect(e.id).toBe('ERR_PASSWORD_BREACHED');
    expect(e.field).toBe('new_password');
    expect(e.message).toMatch(/data breach/);
    expect(await counted()).toEqual({ 'breached/api': 1 });
  });

  it('accepts a password whose suffix is absent', async () => {
    const { check, counted } = build();
    await expect(check.assertNotBreached(CLEAN, 'password')).resolves.toBeUndefined();
    expect(await counted()).toEqual({ 'clean/api': 1 });
  });

  it('does not count a padding line (count 0) for the password as a breach', async () => {
    const padded = 'amber-kestrel-wanders-6120';
    fake.breach(padded, 0);
    const { check } = build();
    await expect(check.assertNotBreached(padded, 'password')).resolves.toBeUndefined();
    // The fake did answer that line: the request asked for padding and got it.
    expect(fake.requests[0]!.headers['add-padding']).toBe('true');
  });

  it('checks the NFKC form of the password, the form that is hashed and stored', async () => {
    const fullWidth = 'ｃｏｐｐｅｒ-lantern-drifts-8812'; // NFKC: BREACHED
    const { check } = build();
    expect((await refusal(check.assertNotBreached(fullWidth, 'password'))).id).toBe('ERR_PASSWORD_BREACHED');
  });

  it('sends only the 5-character prefix: the rest of the hash and the password never leave', async () => {
    const { check, logs } = build();
    await refusal(check.assertNotBreached(BREACHED, 'password'));
    await check.assertNotBreached(CLEAN, 'password');
    fake.mode = 'unavailable';
    await check.assertNotBreached('silver-orchard-listens-5540', 'password');
    expect(fake.requests).toHaveLength(3);
    const secrets = [BREACHED, CLEAN, 'silver-orchard-listens-5540'];
    for (const [i, req] of fake.requests.entries()) {
      const hash = sha1Hex(secrets[i]!);
      expect(req.method).toBe('GET');
      expect(req.url).toBe(`/range/${hash.slice(0, 5)}`);
      expect(req.body).toBe('');
      expect(req.headers['user-agent']).toMatch(/Latch/);
      const everything = `${req.url}\n${JSON.stringify(req.headers)}\n${req.body}`.toUpperCase();
      expect(everything).not.toContain(hash.slice(5));
      expect(everything).not.toContain(hash.slice(5, 12));
      for (const s of secrets) expect(everything).not.toContain(s.toUpperCase());
    }
    // The logs carry neither the password nor any part of its hash (not even the prefix).
    const text = logs().toUpperCase();
    for (const s of secrets) {
      expect(text).not.toContain(s.toUpperCase());
      expect(text).not.toContain(sha1Hex(s).slice(0, 5));
    }
  });

  it('answers a prefix again from the cache, without a request, until the TTL passes', async () => {
    const { check, clock, counted } = build({ cacheTtlMs: 60_000 });
    await refusal(check.assertNotBreached(BREACHED, 'password'));
    expect((await refusal(check.assertNotBreached(BREACHED, 'password'))).id).toBe('ERR_PASSWORD_BREACHED');
    expect(fake.requests).toHaveLength(1);
    expect(await counted()).toEqual({ 'breached/api': 1, 'breached/cache': 1 });
    clock.advance(60_000);
    await refusal(check.assertNotBreached(BREACHED, 'password'));
    expect(fake.requests).toHaveLength(2);
  });

  it('shares one request among concurrent checks of one prefix', async () => {
    const { check } = build();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => check.assertNotBreached(BREACHED, 'password')));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(fake.requests).toHaveLength(1);
  });

  describe.each(['unavailable', 'hang', 'garbage'] as const)('when the range API %s', (mode) => {
    it('open: accepts the password, warns and counts error_open', async () => {
      fake.mode = mode;
      const { check, counted, logs } = build({ failureMode: 'open' });
      await expect(check.assertNotBreached(BREACHED, 'password')).resolves.toBeUndefined();
      expect(await counted()).toEqual({ 'error_open/api': 1 });
      expect(logs()).toMatch(/"level":40.*accepted unchecked/);
    });

    it('closed: answers UNAVAILABLE with its own id, and counts error_closed', async () => {
      fake.mode = mode;
      const { check, counted } = build({ failureMode: 'closed' });
      const e = await refusal(check.assertNotBreached(CLEAN, 'password'));
      expect(e.kind).toBe('unavailable');
      expect(e.id).toBe('ERR_BREACH_CHECK_UNAVAILABLE');
      expect(await counted()).toEqual({ 'error_closed/api': 1 });
    });

    it('does not cache the failure', async () => {
      fake.mode = mode;
      const { check } = build({ failureMode: 'open' });
      await check.assertNotBreached(BREACHED, 'password');
      fake.mode = 'answer';
      expect((await refusal(check.assertNotBreached(BREACHED, 'password'))).id).toBe('ERR_PASSWORD_BREACHED');
    });
  });

  it('fails (closed) when nothing listens at HIBP_URL', async () => {
    const gone = await startFakeRangeApi();
    const url = gone.url;
    await gone.stop();
    const { check } = build({ baseUrl: url, failureMode: 'closed' });
    expect((await refusal(check.assertNotBreached(CLEAN, 'password'))).id).toBe('ERR_BREACH_CHECK_UNAVAILABLE');
  });
});
