import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatchAuthError } from '../../src/sdk/index.js';
import { introspectionClient } from '../../src/sdk/introspection-client.js';
import { signUp, startTestIdentity, type TestIdentity } from '../helpers/identity.js';

/** The SDK's introspection through a @grpc/grpc-js client (protocol "grpc-js") against a real Latch. */
describe('SDK introspection over a grpc-js client', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, nats: false });
  });
  afterAll(() => t?.stop());

  it('an active token gives its principal, a bad one null; a refused credential and a stopped Latch are UNAVAILABLE', async () => {
    const introspect = introspectionClient({ baseUrl: t.grpcUrl, protocol: 'grpc-js', credential: t.introspectionSecret });
    const { session } = await signUp(t.grpc);
    const p = await introspect(session.accessToken);
    expect(p?.userId).toBe(session.user!.id);
    expect(p?.amr).toEqual(['pwd']);
    expect(p?.expiresAtMs).toBeGreaterThan(Date.now());
    expect(await introspect(`${session.accessToken.slice(0, -4)}AAAA`)).toBeNull();

    const wrong = introspectionClient({ baseUrl: t.grpcUrl, protocol: 'grpc-js', credential: 'not-a-caller-secret' });
    const refused = await wrong(session.accessToken).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LatchAuthError);
    expect((refused as LatchAuthError).code).toBe('unavailable');
    expect((refused as LatchAuthError).message).toMatch(/refused this service's introspection credential/);

    await t.stop();
    const down = await introspect(session.accessToken).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(LatchAuthError);
    expect((down as LatchAuthError).code).toBe('unavailable');
  });
});
