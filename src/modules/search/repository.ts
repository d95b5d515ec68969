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

/** A stored hit read back for a results page, with ts_headline's fragments. */
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
 * One full-text query, newest first, restricted to the caller's chats inside the SQL. Only the ids
 * are kept: texts and highlights are read per results page.
 */
const SEARCH_SQL = `SELECT m.id AS "messageId"
           FROM messages m
           -- Inline tsquery: the planner then estimates the matches and can walk seq backwards for
           -- common words instead of fetching every match to sort it.
           WHERE m.search_vector @@ websearch_to_tsquery('russian', :query)
             AND (CAST(:userId AS uuid) IS NULL
                  OR m.chat_id IN (SELECT chat_id FROM members
                                  WHERE user_id = CAST(:userId AS uuid) AND left_at IS NULL))
             AND (CAST(:chatId AS uuid) IS NULL OR m.chat_id = CAST(:chatId AS uuid))
             AND (CAST(:memberId AS uuid) IS NULL OR m.member_id = CAST(:memberId AS uuid))
             AND (CAST(:after AS timestamptz) IS NULL OR m.created_at >= CAST(:after AS timestamptz))
             AND (CAST(:before AS timestamptz) IS NULL OR m.created_at < CAST(:before AS timestamptz))
           ORDER BY m.seq DESC
           LIMIT :limit`;

const HEADLINE_OPTIONS = `StartSel=<mark>, StopSel=</mark>, MaxFragments=3, MaxWords=12, MinWords=4, FragmentDelimiter="${HEADLINE_DELIMITER}"`;

/**
 * The search statement with the named bindings it takes: the repository runs it, and the benchmark's
 * straight-through-pg ceiling runs the very same.
 */
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

  /** The ids of the newest matches; the statement timeout of the search jobs' connections bounds it. */
  async search(filter: SearchFilter, maxResults: number): Promise<string[]> {
    const { rows } = await this.read((knex) =>
      knex.raw<{ rows: { messageId: string }[] }>(
        SEARCH_STATEMENT.sql,
        SEARCH_STATEMENT.bindings(filter, maxResults),
      ),
    );
    return rows.map((row) => row.messageId);
  }

  /** The messages of one results page (by primary key), with highlights for `query`; any order. */
  async messages(ids: string[], query: string): Promise<FoundMessage[]> {
    if (!ids.length) return [];
    const { rows } = await this.knex.raw<{ rows: FoundMessage[] }>(
      `SELECT m.id AS "messageId", m.chat_id AS "chatId", m.member_id AS "memberId", m.text,
              m.created_at AS "createdAt",
              ts_headline('russian', m.text, websearch_to_tsquery('russian', ?), '${HEADLINE_OPTIONS}') AS headline
       FROM messages m
       WHERE m.id IN (${ids.map(() => 'CAST(? AS uuid)').join(', ')})`,
      [query, ...ids],
    );
    return rows;
  }
}
