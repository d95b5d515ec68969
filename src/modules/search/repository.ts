import type { Database, Knex } from '../../infra/db.js';

export interface SearchFilter {
  query: string;
  /** Only chats this user is a member of; null searches every chat (authentication off). */
  userId: string | null;
  chatId?: string;
  memberId?: string;
  after?: Date;
  before?: Date;
}

/** A message found, with ts_headline's fragments. */
export interface FoundMessage {
  messageId: string;
  chatId: string;
  memberId: string;
  text: string;
  createdAt: Date;
  /** Fragments joined by HEADLINE_DELIMITER, matches inside <mark>. */
  headline: string;
}

export const HEADLINE_DELIMITER = ' … ';

const QUERY_CANCELED = '57014';

export function isTimeout(error: unknown): boolean {
  return (error as { code?: string }).code === QUERY_CANCELED;
}

/**
 * One full-text query, newest first, restricted to the caller's chats inside the SQL. Headlines are
 * computed only for the rows kept.
 */
const SEARCH_SQL = `WITH q AS (SELECT websearch_to_tsquery('russian', :query) AS query),
         hits AS (
           SELECT m.seq, m.id, m.chat_id, m.member_id, m.text, m.created_at
           FROM messages m
           -- Inline (not through q): the planner then estimates the matches and can walk seq backwards
           -- for common words instead of fetching every match to sort it.
           WHERE m.search_vector @@ websearch_to_tsquery('russian', :query)
             AND (CAST(:userId AS uuid) IS NULL
                  OR m.chat_id IN (SELECT chat_id FROM members WHERE user_id = CAST(:userId AS uuid)))
             AND (CAST(:chatId AS uuid) IS NULL OR m.chat_id = CAST(:chatId AS uuid))
             AND (CAST(:memberId AS uuid) IS NULL OR m.member_id = CAST(:memberId AS uuid))
             AND (CAST(:after AS timestamptz) IS NULL OR m.created_at >= CAST(:after AS timestamptz))
             AND (CAST(:before AS timestamptz) IS NULL OR m.created_at < CAST(:before AS timestamptz))
           ORDER BY m.seq DESC
           LIMIT :limit
         )
         SELECT hits.id AS "messageId", hits.chat_id AS "chatId", hits.member_id AS "memberId", hits.text,
                hits.created_at AS "createdAt",
                ts_headline('russian', hits.text, q.query,
                  'StartSel=<mark>, StopSel=</mark>, MaxFragments=3, MaxWords=12, MinWords=4, FragmentDelimiter="${HEADLINE_DELIMITER}"')
                  AS headline
         FROM hits, q
         ORDER BY hits.seq DESC`;

/**
 * The search statement with the named bindings it takes: the repository runs it, and the benchmark's
 * straight-through-pg ceiling runs the very same.
 */
/** The query and its bindings, exported for the benchmark's straight-through-pg ceiling. */
export const SEARCH_STATEMENT = {
  sql: SEARCH_SQL,
  bindings: (filter: SearchFilter, maxResults: number) => ({
    query: filter.query,
    userId: filter.userId,
    chatId: filter.chatId ?? null,
    memberId: filter.memberId ?? null,
    after: filter.after?.toISOString() ?? null,
    before: filter.before?.toISOString() ?? null,
    limit: maxResults,
  }),
} as const;

export class SearchRepository {
  constructor(
    private readonly knex: Knex,
    /** Where a read may run (a replica that has caught up, else the primary). */
    private readonly read: Database['read'] = (query) => query(knex),
  ) {}

  /** The statement timeout of the search jobs' own connections (SEARCH_TIMEOUT_MS) bounds it. */
  async search(filter: SearchFilter, maxResults: number): Promise<FoundMessage[]> {
    const { rows } = await this.read((knex) =>
      knex.raw<{ rows: FoundMessage[] }>(SEARCH_STATEMENT.sql, SEARCH_STATEMENT.bindings(filter, maxResults)),
    );
    return rows;
  }
}
