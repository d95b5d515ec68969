import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './db.js';

/**
 * The API's SQL, copied verbatim from the repositories (knex placeholders included) so the "straight
 * through pg" ceilings run exactly what the API runs. `checkDrift` compares them with src/ at run
 * time: a difference is reported next to the results rather than silently benchmarked.
 */
export const SQL = {
  insertMessage: {
    file: 'src/modules/messages/repository.ts',
    text: `WITH chat AS (SELECT id FROM chats WHERE id = ? FOR NO KEY UPDATE)
       INSERT INTO messages (chat_id, member_id, text)
       SELECT mb.chat_id, mb.id, ? FROM members mb JOIN chat ON chat.id = mb.chat_id
       WHERE mb.id = ? AND (?::uuid IS NULL OR mb.user_id = ?::uuid)
       RETURNING id`,
  },
  search: {
    file: 'src/modules/search/repository.ts',
    text: `WITH q AS (SELECT websearch_to_tsquery('russian', :query) AS query),
         hits AS (
           SELECT m.seq, m.id, m.chat_id, m.member_id, m.text, m.created_at
           FROM messages m, q
           WHERE m.search_vector @@ q.query
             AND (CAST(:userId AS uuid) IS NULL
                  OR m.chat_id IN (SELECT chat_id FROM members WHERE user_id = CAST(:userId AS uuid)))
             AND (CAST(:chatId AS uuid) IS NULL OR m.chat_id = CAST(:chatId AS uuid))
             AND (CAST(:memberId AS uuid) IS NULL OR m.member_id = CAST(:memberId AS uuid))
             AND (CAST(:after AS timestamptz) IS NULL OR m.created_at >= CAST(:after AS timestamptz))
             AND (CAST(:before AS timestamptz) IS NULL OR m.created_at < CAST(:before AS timestamptz))
           ORDER BY m.seq DESC
           LIMIT :limit
         )
         SELECT hits.id AS message_id, hits.chat_id, hits.member_id AS user_id, hits.text, hits.created_at,
                ts_headline('russian', hits.text, q.query,
                  'StartSel=<mark>, StopSel=</mark>, MaxFragments=3, MaxWords=12, MinWords=4, FragmentDelimiter=" … "')
                  AS headline
         FROM hits, q
         ORDER BY hits.seq DESC`,
  },
  historyPage: {
    file: 'src/modules/messages/repository.ts',
    text: `SELECT m.seq, m.id AS message_id, m.member_id AS user_id, mb.name AS user_name, m.text, m.created_at
       FROM messages m JOIN members mb ON mb.id = m.member_id
       WHERE m.chat_id = ? AND m.seq > ?
       ORDER BY m.seq
       LIMIT ?`,
  },
} as const;

export type SqlName = keyof typeof SQL;

/** The INSERT's parameters, in the order the repository passes them. */
export function insertParams(
  chatId: string,
  memberId: string,
  userId: string | null,
  text: string,
): unknown[] {
  return [chatId, text, memberId, userId, userId];
}

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

/** Names of the statements that no longer appear in their source file. */
export function checkDrift(): SqlName[] {
  return (Object.keys(SQL) as SqlName[]).filter((name) => {
    const { file, text } = SQL[name];
    const source = fs.readFileSync(path.join(ROOT, file), 'utf8');
    return !squash(source).includes(squash(text));
  });
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
