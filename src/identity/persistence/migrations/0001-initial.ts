import { Migration } from '@mikro-orm/migrations';

export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create extension if not exists citext;`);
    this.addSql(`create table users (
      id uuid primary key,
      email citext not null,
      password_hash text not null,
      role text not null default 'user' check (role in ('user', 'admin')),
      disabled boolean not null default false,
      password_must_change boolean not null default false,
      tokens_valid_after timestamptz not null default 'epoch',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint users_email_unique unique (email)
    );`);
    this.addSql(`create index users_role_idx on users (role);`);
    this.addSql(`create table sessions (
      id uuid primary key,
      user_id uuid not null references users (id) on delete cascade,
      amr text not null default 'pwd',
      user_agent text null,
      client_ip text null,
      created_at timestamptz not null,
      last_used_at timestamptz not null,
      expires_at timestamptz not null,
      revoked_at timestamptz null,
      revoke_reason text null
    );`);
    this.addSql(`create index sessions_user_id_idx on sessions (user_id);`);
    this.addSql(`create table refresh_tokens (
      id uuid primary key,
      session_id uuid not null references sessions (id) on delete cascade,
      user_id uuid not null references users (id) on delete cascade,
      token_hash bytea not null,
      parent_id uuid null,
      created_at timestamptz not null,
      expires_at timestamptz not null,
      consumed_at timestamptz null,
      successor_id uuid null,
      successor_token_enc bytea null,
      constraint refresh_tokens_token_hash_unique unique (token_hash)
    );`);
    this.addSql(`create index refresh_tokens_session_id_idx on refresh_tokens (session_id);`);
    this.addSql(`create index refresh_tokens_user_id_idx on refresh_tokens (user_id);`);
    this.addSql(`create table signing_keys (
      kid text primary key,
      algorithm text not null,
      public_jwk jsonb not null,
      private_key_enc bytea not null,
      created_at timestamptz not null,
      sign_until timestamptz not null,
      publish_until timestamptz not null
    );`);
    this.addSql(`create table outbox (
      id uuid primary key,
      subject text not null,
      payload bytea not null,
      created_at timestamptz not null default now(),
      published_at timestamptz null,
      attempts int not null default 0,
      next_attempt_at timestamptz not null default now(),
      last_error text null
    );`);
    this.addSql(`create index outbox_pending_idx on outbox (next_attempt_at) where published_at is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists outbox, signing_keys, refresh_tokens, sessions, users cascade;`);
  }
}
