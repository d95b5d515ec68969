import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE users (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name          text NOT NULL UNIQUE,
      password_hash text NOT NULL,
      created_at    timestamptz NOT NULL DEFAULT now()
    );

    -- Only a SHA-256 of each session token is stored: a database dump holds no usable session.
    CREATE TABLE sessions (
      token_hash text PRIMARY KEY,
      user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL
    );
    CREATE INDEX sessions_user_id_idx ON sessions (user_id);
    CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

    CREATE TABLE chats (
      id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name       text NOT NULL,
      created_by uuid REFERENCES users (id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    -- A member is a user's presence in one chat under a display name. Anonymous members
    -- (AUTH_DISABLED) have no user.
    CREATE TABLE members (
      id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      chat_id    uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
      user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
      name       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX members_chat_user_uq ON members (chat_id, user_id) WHERE user_id IS NOT NULL;
    CREATE INDEX members_user_chat_idx ON members (user_id, chat_id);

    -- seq orders a chat's history; (chat_id, seq) makes a page a keyset range scan,
    -- the same cost at any depth.
    CREATE TABLE messages (
      id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      seq        bigint GENERATED ALWAYS AS IDENTITY,
      chat_id    uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
      member_id  uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
      text       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX messages_chat_seq_uq ON messages (chat_id, seq);
    CREATE INDEX messages_member_idx ON messages (member_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE messages, members, chats, sessions, users');
}
