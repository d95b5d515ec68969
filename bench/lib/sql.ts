import { HISTORY_PAGE_SQL, INSERT_MESSAGE_SQL } from '../../src/modules/messages/repository.js';
import { SEARCH_SQL } from '../../src/modules/search/repository.js';

/** The API's own statements, imported from the repositories: the pg ceilings run exactly what the API runs. */
export const SQL = {
  insertMessage: { text: INSERT_MESSAGE_SQL },
  search: { text: SEARCH_SQL },
  historyPage: { text: HISTORY_PAGE_SQL },
} as const;

/** The INSERT's parameters, in the order the repository passes them. */
export function insertParams(
  chatId: string,
  memberId: string,
  userId: string | null,
  text: string,
): unknown[] {
  // The last one is the statement's deadline: none for the straight-through ceiling.
  return [chatId, memberId, userId, userId, text, null];
}

/** knex `?` placeholders → pg `$n`. */
export function positional(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** knex `:name` placeholders → pg `$n`, with the parameter order to pass. */
export function named(text: string): { text: string; order: string[] } {
  const order: string[] = [];
  const converted = text.replace(/(?<!:):([A-Za-z]\w*)/g, (_, name: string) => {
    let index = order.indexOf(name);
    if (index < 0) index = order.push(name) - 1;
    return `$${index + 1}`;
  });
  return { text: converted, order };
}
