import { identityEntities } from './app.js';
import { runMigrateCli } from './persistence/migrate-cli.js';

runMigrateCli(identityEntities);
