import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestIdentity, type TestIdentity } from '../helpers/identity.js';

const run = promisify(execFile);
const buf = new URL('../../node_modules/.bin/buf', import.meta.url).pathname;

/** Resolves with the HTTP status, or the socket error code when nothing listens there. */
async function statusAt(host: string, port: number, path: string): Promise<number | string> {
  try {
    return (await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(5000) })).status;
  } catch (e) {
    return ((e as { cause?: { code?: string } }).cause?.code ?? String(e)) as string;
  }
}

/**
 * docs/security.md X4 through the whole service: /metrics only on OPS_PORT, and OPS_PORT on loopback by
 * default even when the public listeners bind every address. 127.0.0.1 and 127.0.0.2 are both
 * this machine, but a socket bound to 127.0.0.1 does not answer on 127.0.0.2 (one bound to
 * 0.0.0.0 does), which tells the two bindings apart without a second network interface.
 */
describe('ops listener (X4)', () => {
  let t: TestIdentity;
  beforeAll(async () => {
    t = await startTestIdentity({ redis: false, nats: false, env: { BIND_ADDRESS: '0.0.0.0', GRPC_REFLECTION: 'false' } });
  });
  afterAll(() => t?.stop());

  it('serves /metrics, /healthz and /readyz on OPS_PORT, bound to 127.0.0.1 by default', async () => {
    expect(t.config.OPS_BIND_ADDRESS).toBe('127.0.0.1');
    const metrics = await fetch(`${t.opsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toContain('latch_process_resident_memory_bytes');
    expect(text).toContain('latch_rpc_duration_seconds');
    expect((await fetch(`${t.opsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.opsUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${t.opsUrl}/nope`)).status).toBe(404);

    // The public port answers on the other loopback address; the ops port does not.
    expect(await statusAt('127.0.0.2', t.app.httpPort, '/healthz')).toBe(200);
    expect(await statusAt('127.0.0.2', t.app.opsPort, '/metrics')).toBe('ECONNREFUSED');
  });

  it('does not serve /metrics on the browser-facing HTTP_PORT', async () => {
    expect((await fetch(`${t.httpUrl}/metrics`)).status).toBe(404);
    const fromBrowser = await fetch(`${t.httpUrl}/metrics`, { headers: { origin: 'https://app.example.test' } });
    expect(fromBrowser.status).toBe(404);
    expect(await fromBrowser.text()).not.toContain('latch_');
  });

  it('GRPC_REFLECTION=false: reflection is not served, the API is', async () => {
    const listed = await run(buf, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', t.grpcUrl]).then(
      (r) => ({ ok: true, text: r.stdout }),
      (e: { stdout: string; stderr: string }) => ({ ok: false, text: e.stdout + e.stderr }),
    );
    expect(listed.ok).toBe(false);
    expect(listed.text).toMatch(/unimplemented/i);
    expect(JSON.parse((await t.grpc.introspection.getJwks({})).keysJson).keys.length).toBeGreaterThan(0);
  });
});
