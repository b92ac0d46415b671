import { loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { openDatabase, type EntityList } from './database.js';

/**
 * `npm run migrate`: applies pending migrations (opening the database migrates) and exits.
 * Runs programmatically rather than through the MikroORM CLI, which would keep an embedded
 * server's process alive. The entry point (src/identity/migrate.ts) hands in the entity list,
 * as app.ts does for the service.
 */
export function runMigrateCli(entities: EntityList): void {
  main(entities).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`migrate failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

async function main(entities: EntityList): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const db = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolMax: 2,
    logger,
    entities,
  });
  try {
    if (db.appliedMigrations.length === 0) logger.info('database schema is up to date');
    else for (const name of db.appliedMigrations) logger.info({ migration: name }, 'applied');
  } finally {
    await db.close();
  }
}
