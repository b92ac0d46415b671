import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the HIBP range API (docs/security.md P2): GET /range/{5 hex} answers
 * `SUFFIX:COUNT` lines, CRLF-separated, with count-0 padding lines like the real one. It can also
 * answer 503, hang past any client timeout, or return garbage, and it records every request.
 */

export type FakeRangeMode = 'answer' | 'unavailable' | 'hang' | 'garbage';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface FakeRangeApi {
  url: string;
  mode: FakeRangeMode;
  readonly requests: RecordedRequest[];
  /** Lists the password as breached `count` times (0 = only as a padding line). */
  breach(password: string, count?: number): void;
  stop(): Promise<void>;
}

export function sha1Hex(password: string): string {
  return createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
}

const randomSuffix = () => randomBytes(18).toString('hex').toUpperCase().slice(0, 35);

export async function startFakeRangeApi(): Promise<FakeRangeApi> {
  const listed = new Map<string, Map<string, number>>();
  const requests: RecordedRequest[] = [];
  const state = { mode: 'answer' as FakeRangeMode };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (state.mode === 'hang') return; // never answers; the client's timeout must end it
      if (state.mode === 'unavailable') {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable');
        return;
      }
      if (state.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>captive portal: please sign in</body></html>');
        return;
      }
      const m = /^\/range\/([0-9A-F]{5})$/.exec(req.url ?? '');
      if (!m || req.method !== 'GET') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('The hash prefix was not in a valid format');
        return;
      }
      const lines: string[] = [];
      for (let i = 0; i < 20; i++) lines.push(`${randomSuffix()}:${1 + i * 7}`);
      for (const [suffix, count] of listed.get(m[1]!) ?? []) lines.push(`${suffix}:${count}`);
      // Padding, as with Add-Padding: true.
      if (req.headers['add-padding'] === 'true') for (let i = 0; i < 30; i++) lines.push(`${randomSuffix()}:0`);
      lines.sort();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: FakeRangeMode) {
      state.mode = m;
    },
    requests,
    breach(password, count = 12_345) {
      const hash = sha1Hex(password);
      const prefix = hash.slice(0, 5);
      if (!listed.has(prefix)) listed.set(prefix, new Map());
      listed.get(prefix)!.set(hash.slice(5), count);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
