import { BootstrapError } from './admin/bootstrap.js';
import { ConfigError, loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { startIdentity } from './app.js';
import { ListenPortError } from './process/listen-ports.js';
import { handleShutdownSignals } from './process/shutdown-signals.js';

/** sysexits EX_CONFIG: the fix is in the configuration (or in what else runs on the host). */
const EX_CONFIG = 78;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`latch: ${err.message}\n`);
      process.exit(EX_CONFIG);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  // Listening from the very start: a signal during start-up (initdb can take seconds) must still
  // stop the embedded database this process is starting, which runs in its own process group.
  const signals = handleShutdownSignals({ logger });
  let app;
  try {
    app = await startIdentity(config, { logger });
  } catch (err) {
    if (err instanceof ListenPortError) {
      process.stderr.write(`latch: ${err.message}\n`);
      process.exit(EX_CONFIG);
    }
    if (err instanceof BootstrapError) {
      logger.fatal(err.message);
      process.exit(EX_CONFIG);
    }
    logger.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  signals.ready(() => app.stop());
}

void main();
