import { Migration0001Initial } from './0001-initial.js';

/** Registered explicitly (no directory globbing), in order. Names are stored in mikro_orm_migrations. */
export const migrationsList = [{ name: '0001-initial', class: Migration0001Initial }];
