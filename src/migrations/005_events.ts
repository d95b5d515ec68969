import type { Knex } from 'knex';

/**
 * The durable event log streams replay from. Each chat numbers its events 1, 2, 3... in commit order:
 * the number is taken by updating the chat's counter, which holds the chat row lock until commit, so
 * a reader that has seen event n of a chat has seen every event before it. A stream's position is
 * therefore one number per chat, exact whatever order different chats commit in, and a number that
 * skips ahead tells a stream it missed something.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE chats ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;

    CREATE TABLE events (
      chat_id    uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
      seq        bigint NOT NULL,
      kind       text NOT NULL,
      -- The account a member event is about: where a newly joined chat's replay starts for it.
      user_id    uuid,
      payload    jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (chat_id, seq)
    );
    CREATE INDEX events_created_at_idx ON events (created_at);
    CREATE INDEX events_member_user_idx ON events (chat_id, user_id, seq) WHERE user_id IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE events; ALTER TABLE chats DROP COLUMN event_seq');
}
