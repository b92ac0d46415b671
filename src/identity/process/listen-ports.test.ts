import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { assertPortsFree, ListenPortError } from './listen-ports.js';

describe('assertPortsFree', () => {
  const open: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  async function occupy(): Promise<number> {
    const s = net.createServer();
    open.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as net.AddressInfo).port;
  }

  it('names the variable, the port and the address of a busy port in one line', async () => {
    const busy = await occupy();
    const err = await assertPortsFree([
      { variable: 'GRPC_PORT', host: '127.0.0.1', port: 0 },
      { variable: 'HTTP_PORT', host: '127.0.0.1', port: busy },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ListenPortError);
    expect((err as Error).message).toBe(`HTTP_PORT ${busy} on 127.0.0.1 is already in use`);
  });

  it('catches two variables set to the same port, and lets every port go again', async () => {
    const port = await occupy();
    await new Promise((r) => open.pop()!.close(r));
    await expect(
      assertPortsFree([
        { variable: 'GRPC_PORT', host: '127.0.0.1', port },
        { variable: 'HTTP_PORT', host: '127.0.0.1', port },
      ]),
    ).rejects.toThrow(`HTTP_PORT ${port} on 127.0.0.1 is already in use`);
    await expect(assertPortsFree([{ variable: 'GRPC_PORT', host: '127.0.0.1', port }])).resolves.toBeUndefined();
  });
});
