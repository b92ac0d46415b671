import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { argon2id, hash as argon2Hash } from 'argon2';
import { describe, expect, it } from 'vitest';
import { LatchError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import { PasswordHasher, type PasswordHasherOptions } from './hasher.js';

const defaults: PasswordHasherOptions = {
  memoryKiB: 19456,
  timeCost: 2,
  parallelism: 1,
  concurrency: 2,
  queueMax: 16,
  queueTimeoutMs: 10_000,
  maxBytes: 1024,
};
const make = (o: Partial<PasswordHasherOptions> = {}) => new PasswordHasher({ ...defaults, ...o });

const REFERENCE = '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc';

async function rejectionOf(p: Promise<unknown>): Promise<LatchError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LatchError);
  return e as LatchError;
}

describe('PasswordHasher format and verification (P3)', () => {
  const hasher = make();

  it('writes Argon2id v1.3 PHC strings, m=19456,t=2,p=1 in that order, 16-byte salt, 32-byte tag', async () => {
    const a = await hasher.hash('violet kettle drum stage');
    const b = await hasher.hash('violet kettle drum stage');
    const m = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(a);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1]!, 'base64')).toHaveLength(16);
    expect(Buffer.from(m![2]!, 'base64')).toHaveLength(32);
    expect(a).not.toBe(b); // fresh salt each time
    await expect(hasher.verify(a, 'violet kettle drum stage')).resolves.toEqual({ ok: true, needsRehash: false });
    await expect(hasher.verify(a, 'violet kettle drum stagE')).resolves.toEqual({ ok: false, needsRehash: false });
  });

  it('verifies the reference CLI vector, which is stronger than the minimum: no rehash', async () => {
    await expect(hasher.verify(REFERENCE, 'password')).resolves.toEqual({ ok: true, needsRehash: false });
    await expect(hasher.verify(REFERENCE, 'Password')).resolves.toEqual({ ok: false, needsRehash: false });
  });

  it('asks for a rehash of a correct password under weaker or foreign parameters', async () => {
    const weak = await argon2Hash('violet kettle drum stage', { type: argon2id, memoryCost: 4096, timeCost: 2, parallelism: 1 });
    expect(weak).toContain('m=4096');
    await expect(hasher.verify(weak, 'violet kettle drum stage')).resolves.toEqual({ ok: true, needsRehash: true });
    await expect(hasher.verify(weak, 'wrong')).resolves.toEqual({ ok: false, needsRehash: false });

    const argon2i = await argon2Hash('violet kettle drum stage', { type: 1, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(argon2i.startsWith('$argon2i$')).toBe(true);
    await expect(hasher.verify(argon2i, 'violet kettle drum stage')).resolves.toEqual({ ok: true, needsRehash: true });

    // node-argon2's own encoding (m,p,t) verifies but is rewritten so other libraries can read it.
    const nodeOrder = await argon2Hash('violet kettle drum stage', { type: argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(nodeOrder).toContain('m=19456,p=1,t=2');
    await expect(hasher.verify(nodeOrder, 'violet kettle drum stage')).resolves.toEqual({ ok: true, needsRehash: true });

    const stronger = make({ memoryKiB: 65536, timeCost: 3 });
    await expect(stronger.verify(REFERENCE, 'password')).resolves.toEqual({ ok: true, needsRehash: true });
  });

  it('hashes the NFKC form: full-width and ligature spellings verify against each other', async () => {
    const phc = await hasher.hash('ＦＵＬＬ ｗｉｄｔｈ ﬁsh tank');
    await expect(hasher.verify(phc, 'FULL width fish tank')).resolves.toMatchObject({ ok: true });
  });

  it('answers ok:false for a malformed stored hash, logs it, and never throws', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logged = make({ logger: createLogger('info', sink) });
    for (const bad of [
      '',
      'not a hash',
      '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ',
      '$argon2id$v=19$m=65536,t=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc',
      '$bcrypt$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc',
      // Parses, but would take 4 GiB: refused rather than run.
      '$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc',
    ]) {
      await expect(logged.verify(bad, 'password')).resolves.toEqual({ ok: false, needsRehash: false });
    }
    expect(lines.filter((l) => l.includes('stored password hash'))).toHaveLength(6);
    expect(lines.join('')).not.toContain('"password"');
  });
});

describe('PasswordHasher input cap and bounded work (A2)', () => {
  it('refuses more than maxBytes before hashing, even when the queue is full', async () => {
    const hasher = make({ concurrency: 1, queueMax: 0, newPasswordQueueMax: 0 });
    const running = hasher.hash('violet kettle drum stage');
    expect(hasher.inFlight()).toBe(1);
    const tooLong = randomBytes(512).toString('hex') + 'x';
    for (const p of [hasher.hash(tooLong), hasher.verify(REFERENCE, tooLong), hasher.burn(tooLong)]) {
      expect(await rejectionOf(p)).toMatchObject({ kind: 'invalid_argument', id: 'ERR_PASSWORD_TOO_LONG' });
    }
    // The same call within the cap reaches the (full) queue instead.
    expect((await rejectionOf(hasher.hash(tooLong.slice(0, 1024)))).id).toBe('ERR_HASHING_BUSY');
    await running;
  });

  it('with concurrency 1 and a new-password queue of 2, of 10 hashes at once exactly 3 succeed and 7 are shed', async () => {
    const hasher = make({ concurrency: 1, newPasswordQueueMax: 2 });
    const all = Array.from({ length: 10 }, (_, i) => hasher.hash(`violet kettle drum stage ${i}`));
    expect([hasher.inFlight(), hasher.queued()]).toEqual([1, 2]);
    const settled = await Promise.allSettled(all);
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const shed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as LatchError] : []));
    expect(ok).toHaveLength(3);
    expect(shed).toHaveLength(7);
    for (const e of shed) {
      expect(e).toBeInstanceOf(LatchError);
      expect(e).toMatchObject({ kind: 'unavailable', id: 'ERR_HASHING_BUSY', message: 'the service is busy, try again shortly' });
      expect(e.retryAfterMs).toBeGreaterThan(0);
    }
    expect([hasher.inFlight(), hasher.queued()]).toEqual([0, 0]);
  });

  it('sheds a queued call after queueTimeoutMs', async () => {
    // A costlier hash keeps the only slot busy far longer than the 20 ms queue timeout.
    const hasher = make({ memoryKiB: 65536, timeCost: 4, concurrency: 1, queueMax: 5, queueTimeoutMs: 20 });
    const first = hasher.hash('violet kettle drum stage');
    const waiting = hasher.verify(REFERENCE, 'password');
    expect(hasher.queued()).toBe(1);
    expect((await rejectionOf(waiting)).id).toBe('ERR_HASHING_BUSY');
    expect(hasher.queued()).toBe(0);
    await expect(first).resolves.toMatch(/^\$argon2id\$/);
  });
});

describe('PasswordHasher lanes (A5)', () => {
  it('hashing new passwords holds at most newPasswordConcurrency slots; verifies take the rest at once', async () => {
    const hasher = make({ concurrency: 3, newPasswordConcurrency: 1, newPasswordQueueMax: 4 });
    const phc = await hasher.hash('violet kettle drum stage');
    const before = hasher.started();
    const hashes = Array.from({ length: 8 }, (_, i) => hasher.hash(`violet kettle drum stage ${i}`));
    const hashesSettled = Promise.allSettled(hashes);
    expect([hasher.inFlight('new'), hasher.queued('new')]).toEqual([1, 4]);
    const verifies = [hasher.verify(phc, 'violet kettle drum stage'), hasher.burn('nobody knows this one')];
    expect([hasher.inFlight('verify'), hasher.queued('verify')]).toEqual([2, 0]);
    await expect(verifies[0]).resolves.toEqual({ ok: true, needsRehash: false });
    await verifies[1];
    const settled = await hashesSettled;
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(5);
    const shed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as LatchError] : []));
    expect(shed.map((e) => e.id)).toEqual(['ERR_HASHING_BUSY', 'ERR_HASHING_BUSY', 'ERR_HASHING_BUSY']);
    expect(hasher.started() - before).toBe(7);
  });

  it('keeps one slot for verifies even when the new-password share is set too high', async () => {
    const hasher = make({ concurrency: 2, newPasswordConcurrency: 5, newPasswordQueueMax: 4 });
    const hashes = Array.from({ length: 3 }, (_, i) => hasher.hash(`violet kettle drum stage ${i}`));
    expect([hasher.inFlight('new'), hasher.queued('new')]).toEqual([1, 2]);
    const burning = hasher.burn('x');
    expect(hasher.inFlight('verify')).toBe(1);
    await Promise.all([...hashes, burning]);
  });

  it('a queued verify goes before queued new-password hashes', async () => {
    const hasher = make({ concurrency: 1, newPasswordQueueMax: 4 });
    const order: string[] = [];
    const hashes = Array.from({ length: 3 }, (_, i) => hasher.hash(`violet kettle drum stage ${i}`).then(() => order.push(`hash${i}`)));
    const verify = hasher.burn('x').then(() => order.push('verify'));
    expect([hasher.queued('new'), hasher.queued('verify')]).toEqual([2, 1]);
    await Promise.all([...hashes, verify]);
    expect(order).toEqual(['hash0', 'verify', 'hash1', 'hash2']);
  });

  it('wait:false refuses at once instead of queueing (hash upgrades at sign-in)', async () => {
    const hasher = make({ concurrency: 2 });
    const running = hasher.hash('violet kettle drum stage');
    expect((await rejectionOf(hasher.hash('violet kettle drum stage 2', { wait: false }))).id).toBe('ERR_HASHING_BUSY');
    expect(hasher.queued()).toBe(0);
    await running;
    await expect(hasher.hash('violet kettle drum stage 3', { wait: false })).resolves.toMatch(/^\$argon2id\$/);
  });
});

describe('PasswordHasher.burn (P4)', () => {
  it('runs a real Argon2 verify with the current parameters', async () => {
    const hasher = make({ concurrency: 1 });
    const phc = await hasher.hash('violet kettle drum stage');
    const time = async (f: () => Promise<unknown>) => {
      const t = performance.now();
      await f();
      return performance.now() - t;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const verifies: number[] = [];
    const burns: number[] = [];
    for (let i = 0; i < 5; i++) {
      verifies.push(await time(() => hasher.verify(phc, 'wrong guess here')));
      burns.push(await time(() => hasher.burn('wrong guess here')));
    }
    expect(median(burns)).toBeGreaterThan(median(verifies) / 3);

    // It takes a slot like any other Argon2 run.
    const burning = hasher.burn('x');
    expect(hasher.inFlight()).toBe(1);
    await burning;
  });
});
