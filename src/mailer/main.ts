import { ConfigError, loadMailerConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { startMailer } from './mailer.js';

/** sysexits EX_CONFIG: the fix is in the configuration. */
const EX_CONFIG = 78;

async function main(): Promise<void> {
  let config;
  try {
    config = loadMailerConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`latch-mailer: ${err.message}\n`);
      process.exit(EX_CONFIG);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL).child({ process: 'mailer' });
  let app;
  try {
    app = await startMailer(config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'mailer: start-up failed');
    process.exit(1);
  }
  // SIGTERM or Ctrl-C: stop pulling, finish the sends in flight, exit. A second request more
  // than a second later exits at once (unsent mail is not acked, so it is delivered later).
  let firstAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (firstAt !== undefined) {
      if (now - firstAt > 1000) {
        logger.warn({ signal }, 'mailer: second stop request, exiting now');
        process.exit(1);
      }
      return;
    }
    firstAt = now;
    logger.info({ signal }, 'mailer: stopping, finishing the mails in flight');
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'mailer: stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

void main();
