import type http from 'node:http';

/** What the HTTP listeners (http-server.ts, ops-server.ts) share: short text answers, probes, binding. */

export function sendText(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers GET /healthz (the process is up) and /readyz (the database answers); false for any other path. */
export async function answerProbe(path: string, res: http.ServerResponse, ready: () => Promise<boolean>): Promise<boolean> {
  if (path === '/healthz') {
    sendText(res, 200, 'ok');
    return true;
  }
  if (path === '/readyz') {
    const ok = await ready().catch(() => false);
    sendText(res, ok ? 200 : 503, ok ? 'ready' : 'not ready');
    return true;
  }
  return false;
}

/** Binds `server`; resolves with the port (the chosen one for port 0), rejects with the bind error. */
export function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}
