import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that must never reach a log line, whatever a caller passes in. Secrets are also kept out
 * by construction (we never log request messages); this is the second fence.
 */
const REDACT = [
  'password',
  '*.password',
  'current_password',
  'new_password',
  '*.currentPassword',
  '*.newPassword',
  'token',
  '*.token',
  'refresh_token',
  '*.refreshToken',
  'authorization',
  '*.authorization',
  'secret',
  '*.secret',
  'ADMIN_PASSWORD',
  '*.ADMIN_PASSWORD',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'latch' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that discards everything (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
