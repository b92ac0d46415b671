import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PasswordHasher } from './hasher.js';

/**
 * Interop with argon2-cffi (the library under pwdlib), from Debian's python3-argon2 (P3).
 * Under CI=true a missing python3-argon2 fails the run; elsewhere the suite is skipped and says why.
 */
const PYTHON = '/usr/bin/python3';

function python(script: string, input: unknown): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(input), encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

const probe = python('import argon2, sys, json; json.load(sys.stdin)', null);
const available = probe.status === 0;
const ci = process.env.CI === 'true';

// argon2-cffi 21 (Debian) defaults to a 16-byte tag; such hashes are accepted without a rehash.
const HASH = `
import json, sys
from argon2 import PasswordHasher
a = json.load(sys.stdin)
print(PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(a["password"]))
`;
const VERIFY = `
import json, sys
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
a = json.load(sys.stdin)
ph = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)
try:
    ph.verify(a["hash"], a["password"])
    print("match", "rehash" if ph.check_needs_rehash(a["hash"]) else "current")
except VerifyMismatchError:
    print("mismatch")
`;

const hasher = new PasswordHasher({
  memoryKiB: 19456,
  timeCost: 2,
  parallelism: 1,
  concurrency: 2,
  queueMax: 8,
  queueTimeoutMs: 10_000,
  maxBytes: 1024,
});
// Typed in a mixed form; both sides agree on its NFKC form.
const typed = 'Ｖiolet ﬁsh 🐎 kettle Élan drum';
const nfkc = typed.normalize('NFKC');

if (ci && !available) {
  describe('argon2-cffi interop', () => {
    it('needs python3-argon2 under CI', () => {
      throw new Error(`CI=true but ${PYTHON} cannot import argon2 (apt-get install python3-argon2): ${probe.stderr.trim()}`);
    });
  });
} else {
  const suite = available ? describe : describe.skip;
  const name = available ? 'argon2-cffi interop' : 'argon2-cffi interop [skipped: python3-argon2 not installed]';
  suite(name, () => {
    it('argon2-cffi verifies our hashes and finds their parameters current', async () => {
      const phc = await hasher.hash(typed);
      expect(python(VERIFY, { hash: phc, password: nfkc }).stdout.trim()).toBe('match current');
      expect(python(VERIFY, { hash: phc, password: nfkc + '!' }).stdout.trim()).toBe('mismatch');
    });

    it('we verify argon2-cffi hashes, from any spelling with the same NFKC form', async () => {
      const r = python(HASH, { password: nfkc });
      expect(r.status, r.stderr).toBe(0);
      const phc = r.stdout.trim();
      expect(phc).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      await expect(hasher.verify(phc, typed)).resolves.toEqual({ ok: true, needsRehash: false });
      await expect(hasher.verify(phc, nfkc)).resolves.toEqual({ ok: true, needsRehash: false });
      await expect(hasher.verify(phc, nfkc + '!')).resolves.toEqual({ ok: false, needsRehash: false });
    });
  });
}
