import { Migration0001Initial } from './0001-initial.js';
import { Migration0002Mfa } from './0002-mfa.js';
import { Migration0003PasswordReset } from './0003-password-reset.js';
import { Migration0004EmailVerification } from './0004-email-verification.js';
import { Migration0005OutboxOrder } from './0005-outbox-order.js';

/** Registered explicitly (no directory globbing), in order. Names are stored in mikro_orm_migrations. */
export const migrationsList = [
  { name: '0001-initial', class: Migration0001Initial },
  { name: '0002-mfa', class: Migration0002Mfa },
  { name: '0003-password-reset', class: Migration0003PasswordReset },
  { name: '0004-email-verification', class: Migration0004EmailVerification },
  { name: '0005-outbox-order', class: Migration0005OutboxOrder },
];
