import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/shared/clock.js';
import { AccessTokens } from '../../src/identity/token/access-token.js';
import type { SigningAlgorithm } from '../../src/identity/token/key-material.js';
import { AUDIENCE, ISSUER, sampleInput, TokenWorld } from './fixture.js';

/**
 * An independent implementation (PyJWT from Debian's python3-jwt, with python3-cryptography for
 * EdDSA/ES256) must accept our tokens using only the published JWKS.
 */
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import jwt, cryptography; print(jwt.__version__)'], { encoding: 'utf8' });
const available = probe.status === 0;
const reason = `python3-jwt / python3-cryptography not importable by ${PYTHON} (apt-get install -y python3-jwt python3-cryptography)`;

if (!available && process.env.CI === 'true') {
  throw new Error(`CI=true but ${reason}`);
}
if (!available) process.stderr.write(`[python-peer] skipped: ${reason}\n`);

const VERIFY = `
import json, sys, jwt
jwks, token, iss, aud = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
header = jwt.get_unverified_header(token)
assert header["typ"] == "at+jwt", header
keys = {k["kid"]: k for k in json.loads(jwks)["keys"]}
jwk = jwt.PyJWK(keys[header["kid"]])
# No leeway: iat is whole seconds, so a strict verifier accepts a token the moment it is issued.
claims = jwt.decode(token, jwk.key, algorithms=[keys[header["kid"]]["alg"]], audience=aud, issuer=iss, leeway=0,
                    options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
print(json.dumps(claims))
`;

describe.skipIf(!available)(`PyJWT accepts our access tokens${available ? '' : ` [skipped: ${reason}]`}`, () => {
  it.each<SigningAlgorithm>(['EdDSA', 'ES256'])('%s token verified with the JWKS public key', async (algorithm) => {
    const world = await TokenWorld.create();
    try {
      // PyJWT checks exp/iat against the real time, so this store runs on the system clock.
      const store = await world.openStore({ algorithm, clock: systemClock });
      const issued = await new AccessTokens(store, {
        issuer: ISSUER,
        audience: AUDIENCE,
        ttlSeconds: 300,
        clock: systemClock,
      }).issue(sampleInput);
      const out = execFileSync(PYTHON, ['-c', VERIFY, store.jwksJson(), issued.token, ISSUER, AUDIENCE], { encoding: 'utf8' });
      const claims = JSON.parse(out) as Record<string, unknown>;
      expect(claims).toMatchObject({ sub: sampleInput.userId, iss: ISSUER, aud: AUDIENCE, jti: issued.jti, sid: sampleInput.sessionId });
      expect(claims.iat).toBe(Math.floor(issued.issuedAtMs / 1000));
      expect(claims.iat_ms).toBe(issued.issuedAtMs);

      // And the same peer refuses a tampered token, so the check above is a real one.
      const [h, , s] = issued.token.split('.');
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${s}`;
      const bad = spawnSync(PYTHON, ['-c', VERIFY, store.jwksJson(), tampered, ISSUER, AUDIENCE], { encoding: 'utf8' });
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/InvalidSignatureError|Signature verification failed/);
    } finally {
      await world.close();
    }
  });
});
