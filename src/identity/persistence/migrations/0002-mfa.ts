import { Migration } from '@mikro-orm/migrations';

/** Second factor: TOTP credentials, backup codes and sign-in challenges (docs/security.md M1-M6). */
export class Migration0002Mfa extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table totp_credentials (
      user_id uuid primary key references users (id) on delete cascade,
      secret_enc bytea not null,
      confirmed_at timestamptz null,
      last_used_step bigint null check (last_used_step >= 0),
      created_at timestamptz not null default now()
    );`);
    this.addSql(`create table backup_codes (
      id uuid primary key,
      user_id uuid not null references users (id) on delete cascade,
      code_hash text not null,
      used_at timestamptz null,
      created_at timestamptz not null default now()
    );`);
    this.addSql(`create index backup_codes_user_id_idx on backup_codes (user_id);`);
    this.addSql(`create table mfa_challenges (
      id uuid primary key,
      user_id uuid not null references users (id) on delete cascade,
      token_hash bytea not null,
      amr text not null default 'pwd',
      expires_at timestamptz not null,
      consumed_at timestamptz null,
      failed_attempts int not null default 0 check (failed_attempts >= 0),
      created_at timestamptz not null default now(),
      client_ip text null,
      user_agent text null,
      constraint mfa_challenges_token_hash_unique unique (token_hash)
    );`);
    this.addSql(`create index mfa_challenges_user_id_idx on mfa_challenges (user_id);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists mfa_challenges, backup_codes, totp_credentials cascade;`);
  }
}
