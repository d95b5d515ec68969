import type { Knex } from 'knex';

/**
 * Search results are the newest matches: with an index on seq alone, a common word's newest matches
 * are found by walking seq backwards instead of sorting every match.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX messages_seq_idx ON messages (seq)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX messages_seq_idx');
}
