import type { Knex } from 'knex';

/**
 * What a client's chat list, read marks, leaving and retried sends need.
 *
 * Unread counts cost O(1) per chat at read time, from counters kept on insert:
 * - chats.message_count (messages ever sent in the chat), chats.last_seq (its newest message),
 *   chats.last_activity_at (the chat list's order);
 * - members.sent_count (messages sent by this membership);
 * - a read mark stores its position (read_seq) and a snapshot taken in one statement:
 *   read_unread (others' messages after read_seq then), read_message_count and read_sent_count
 *   (the two counters then).
 * unread = read_unread + (message_count − read_message_count) − (sent_count − read_sent_count):
 * what was unread at the mark plus what others sent since. A membership that never marked has
 * zeros there, so everyone else's messages count. Moving a mark counts the messages after the new
 * position once (usually none: clients mark what they show, the newest messages).
 *
 * The counters are kept by a statement-level trigger over the inserted rows (one UPDATE per chat and
 * per sender whatever the number of rows), so the send statement stays as it is and bulk inserts
 * keep them right too. A send already holds its chat row (FOR NO KEY UPDATE), so updating it adds
 * no new lock order.
 *
 * Leaving keeps the member row (left_at) so that joining again gives back the same member id; every
 * membership check requires left_at IS NULL.
 *
 * Idempotency keys: one row per (owner, key) holding a hash of the request and the message it
 * created, written in the send's own statement; a periodic DELETE removes rows older than 24 h.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE chats
      ADD COLUMN message_count bigint NOT NULL DEFAULT 0,
      ADD COLUMN last_seq bigint NOT NULL DEFAULT 0,
      ADD COLUMN last_activity_at timestamptz;
    UPDATE chats c SET message_count = s.n, last_seq = s.last_seq, last_activity_at = s.last_at
      FROM (SELECT chat_id, count(*) AS n, max(seq) AS last_seq, max(created_at) AS last_at
            FROM messages GROUP BY chat_id) s
      WHERE s.chat_id = c.id;
    UPDATE chats SET last_activity_at = GREATEST(created_at, last_activity_at);
    ALTER TABLE chats
      ALTER COLUMN last_activity_at SET DEFAULT now(),
      ALTER COLUMN last_activity_at SET NOT NULL;

    ALTER TABLE members
      ADD COLUMN left_at timestamptz,
      ADD COLUMN sent_count bigint NOT NULL DEFAULT 0,
      ADD COLUMN read_seq bigint NOT NULL DEFAULT 0,
      ADD COLUMN read_unread bigint NOT NULL DEFAULT 0,
      ADD COLUMN read_message_count bigint NOT NULL DEFAULT 0,
      ADD COLUMN read_sent_count bigint NOT NULL DEFAULT 0;
    UPDATE members mb SET sent_count = s.n
      FROM (SELECT member_id, count(*) AS n FROM messages GROUP BY member_id) s
      WHERE s.member_id = mb.id;
    CREATE INDEX members_chat_id_idx ON members (chat_id, id) WHERE left_at IS NULL;
    -- A user's current chats without visiting their member rows (the chat list).
    CREATE INDEX members_user_current_idx ON members (user_id, chat_id) WHERE left_at IS NULL;

    CREATE FUNCTION messages_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE chats c
         SET message_count = c.message_count + s.n,
             last_seq = GREATEST(c.last_seq, s.last_seq),
             last_activity_at = GREATEST(c.last_activity_at, s.last_at)
        FROM (SELECT chat_id, count(*) AS n, max(seq) AS last_seq, max(created_at) AS last_at
              FROM inserted GROUP BY chat_id) s
       WHERE c.id = s.chat_id;
      UPDATE members mb
         SET sent_count = mb.sent_count + s.n
        FROM (SELECT member_id, count(*) AS n FROM inserted GROUP BY member_id) s
       WHERE mb.id = s.member_id;
      RETURN NULL;
    END $$;
    CREATE TRIGGER messages_count_inserted AFTER INSERT ON messages
      REFERENCING NEW TABLE AS inserted
      FOR EACH STATEMENT EXECUTE FUNCTION messages_count_inserted();

    -- owner: the user's id, or '' for anonymous callers (authentication off).
    CREATE TABLE idempotency_keys (
      owner        text NOT NULL,
      key          text NOT NULL,
      request_hash text NOT NULL,
      message_id   uuid NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (owner, key)
    );
    CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE idempotency_keys;
    DROP TRIGGER messages_count_inserted ON messages;
    DROP FUNCTION messages_count_inserted();
    DROP INDEX members_chat_id_idx, members_user_current_idx;
    ALTER TABLE members DROP COLUMN left_at, DROP COLUMN sent_count, DROP COLUMN read_seq,
      DROP COLUMN read_unread, DROP COLUMN read_message_count, DROP COLUMN read_sent_count;
    ALTER TABLE chats DROP COLUMN message_count, DROP COLUMN last_seq, DROP COLUMN last_activity_at;
  `);
}
