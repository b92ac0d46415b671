import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * An SMTP server that accepts every mail and reads it to the end without parsing it, in its own
 * process so that neither sender measured against it shares its CPU. Prints `listening <port>`,
 * then `mail <monotonic ns>` per accepted mail.
 */
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, _session, callback) {
    stream.on('data', () => {});
    stream.on('end', () => {
      process.stdout.write(`mail ${process.hrtime.bigint()}\n`);
      callback();
    });
  },
});
server.on('error', () => {});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
