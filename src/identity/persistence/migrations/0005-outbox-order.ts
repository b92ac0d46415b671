import { Migration } from '@mikro-orm/migrations';

/**
 * Events leave the outbox in the order they were written (E1). created_at has millisecond
 * precision, and one transaction often writes two events within the same millisecond (a
 * backup code used to turn TOTP off: BACKUP_CODE_USED, then TOTP_DISABLED); the uuid that broke
 * such ties is random. A sequence number assigned by the database on insert keeps their order.
 * Adding it numbers every existing row, so PostgreSQL rewrites the table under an exclusive lock:
 * on an outbox with millions of published rows the upgrade's start waits for that rewrite.
 */
export class Migration0005OutboxOrder extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table outbox add column seq bigint generated always as identity;`);
    this.addSql(`drop index if exists outbox_pending_idx;`);
    this.addSql(`create index outbox_pending_idx on outbox (next_attempt_at, seq) where published_at is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists outbox_pending_idx;`);
    this.addSql(`create index outbox_pending_idx on outbox (next_attempt_at) where published_at is null;`);
    this.addSql(`alter table outbox drop column if exists seq;`);
  }
}
