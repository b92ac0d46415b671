/**
 * A sign-up flood from its own process, so its work does not share the event loop of the
 * service under test: `node test/identity/flood-client.mjs <grpcUrl> <concurrency> <ms> <xff>`.
 * Plain HTTP/2 gRPC with a hand-encoded RegisterRequest (fields 1 and 2), so the client costs
 * as little CPU as possible on a small machine. Each of `concurrency` loops sends Register again
 * as soon as the last answer arrives, without back-off, as an attacker would. Prints one JSON
 * line of answer counts by gRPC status name when done.
 */
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';

const [url, concurrencyArg, durationArg, forwardedFor] = process.argv.slice(2);
const until = Date.now() + Number(durationArg);
const names = { 0: 'ok', 6: 'AlreadyExists', 8: 'ResourceExhausted', 14: 'Unavailable' };
const password = Buffer.from('violet-harbour-quietly-1923');
const tag = randomBytes(4).toString('hex');
const session = http2.connect(url);
session.on('error', () => {});
const counts = {};
let n = 0;

function frame(email) {
  const e = Buffer.from(email);
  const msg = Buffer.concat([Buffer.from([0x0a, e.length]), e, Buffer.from([0x12, password.length]), password]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function register(email) {
  return new Promise((resolve) => {
    let status;
    const req = session.request({
      ':method': 'POST',
      ':path': '/identity.v1.AuthService/Register',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-forwarded-for': forwardedFor,
    });
    req.on('response', (h) => (status ??= h['grpc-status']));
    req.on('trailers', (t) => (status = t['grpc-status'] ?? status));
    req.on('data', () => {});
    req.on('close', () => resolve(status === undefined ? 'none' : (names[status] ?? `code${status}`)));
    req.on('error', () => {});
    req.end(frame(email));
  });
}

async function loop() {
  while (Date.now() < until) {
    const code = await register(`flood-${tag}-${n++}@example.test`);
    counts[code] = (counts[code] ?? 0) + 1;
  }
}

await Promise.all(Array.from({ length: Number(concurrencyArg) }, loop));
session.close();
process.stdout.write(`${JSON.stringify(counts)}\n`);
