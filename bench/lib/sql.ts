import knexFactory, { type Knex } from 'knex';

export { CHAT_STATEMENTS } from '../../src/modules/chats/repository.js';
export { MESSAGE_STATEMENTS } from '../../src/modules/messages/repository.js';
export { SEARCH_STATEMENT } from '../../src/modules/search/repository.js';

/** Never connects: it only turns a repository statement into the text and values pg receives. */
const knex = knexFactory({ client: 'pg' });

/**
 * What knex sends to pg for `sql` with `bindings` (`?` and `:name` placeholders become `$n`), so a
 * straight-through-pg ceiling runs exactly the API's statement. Positional bindings keep their
 * order: a statement's text converted once takes any later `bindings(...)` list of the same shape.
 */
export function native(sql: string, bindings: readonly Knex.RawBinding[] | Knex.ValueDict): PgStatement {
  const { sql: text, bindings: values } = knex
    .raw(sql, bindings as Knex.RawBinding[] | Knex.ValueDict)
    .toSQL()
    .toNative();
  return { text, values: [...values] };
}

export interface PgStatement {
  text: string;
  values: unknown[];
}
