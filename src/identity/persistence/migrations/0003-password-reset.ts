import { Migration } from '@mikro-orm/migrations';

/** Password-reset tokens (docs/security.md F2): only their SHA-256, one live token per user. */
export class Migration0003PasswordReset extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table password_reset_tokens (
      id uuid primary key,
      user_id uuid not null references users (id) on delete cascade,
      token_hash bytea not null,
      expires_at timestamptz not null,
      consumed_at timestamptz null,
      superseded_at timestamptz null,
      created_at timestamptz not null default now(),
      constraint password_reset_tokens_token_hash_unique unique (token_hash)
    );`);
    // Newest only: at most one token per user is neither used nor superseded.
    this.addSql(`create unique index password_reset_tokens_one_live_idx on password_reset_tokens (user_id)
      where consumed_at is null and superseded_at is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists password_reset_tokens cascade;`);
  }
}
