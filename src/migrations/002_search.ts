import type { Knex } from 'knex';

/**
 * Full-text search over messages. The `russian` configuration stems Cyrillic words with the Russian
 * stemmer and Latin words with the English one, so one vector serves both languages.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE messages
      ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (to_tsvector('russian', text)) STORED;
    CREATE INDEX messages_search_idx ON messages USING gin (search_vector);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX messages_search_idx; ALTER TABLE messages DROP COLUMN search_vector');
}
