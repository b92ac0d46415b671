import { Migration } from '@mikro-orm/migrations';

/**
 * Email verification (docs/security.md V1): when a user's address was verified, and the
 * verification tokens (only their SHA-256, one live token per user, bound to the address).
 */
export class Migration0004EmailVerification extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table users add column email_verified_at timestamptz null;`);
    this.addSql(`create table email_verification_tokens (
      id uuid primary key,
      user_id uuid not null references users (id) on delete cascade,
      email citext not null,
      token_hash bytea not null,
      expires_at timestamptz not null,
      consumed_at timestamptz null,
      superseded_at timestamptz null,
      created_at timestamptz not null default now(),
      constraint email_verification_tokens_token_hash_unique unique (token_hash)
    );`);
    // Newest only: at most one token per user is neither used nor superseded.
    this.addSql(`create unique index email_verification_tokens_one_live_idx on email_verification_tokens (user_id)
      where consumed_at is null and superseded_at is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists email_verification_tokens cascade;`);
    this.addSql(`alter table users drop column if exists email_verified_at;`);
  }
}
