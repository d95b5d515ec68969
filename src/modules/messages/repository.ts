import { DatabaseUnavailableError, statementDeadline, type Database, type Knex } from '../../infra/db.js';

/** A message as history shows it, in the code's names. */
export interface HistoryRow {
  seq: string;
  messageId: string;
  memberId: string;
  memberName: string;
  text: string;
  createdAt: Date;
}

// The chat row lock makes a chat's inserts take their seq in commit order: a reader's cursor can
// never pass a message that commits later with a smaller seq. The member row is locked next (as its
// foreign key check would) so that the deadline, checked once both locks are held, is the last wait:
// an insert that reaches the server, or gets its locks, after the client gave up stores nothing.
const INSERT_MESSAGE_SQL = `WITH chat AS (SELECT id FROM chats WHERE id = ? FOR NO KEY UPDATE),
       member AS (SELECT mb.id, mb.chat_id FROM members mb JOIN chat ON chat.id = mb.chat_id
                  WHERE mb.id = ? AND (?::uuid IS NULL OR mb.user_id = ?::uuid) FOR KEY SHARE OF mb)
       INSERT INTO messages (chat_id, member_id, text)
       SELECT member.chat_id, member.id, ? FROM member
       WHERE clock_timestamp() < coalesce(?::timestamptz, 'infinity')
       RETURNING id`;

/** Up to `limit` messages after position `afterSeq`, oldest first: a keyset range on (chat_id, seq). */
const HISTORY_PAGE_SQL = `SELECT m.seq, m.id AS "messageId", m.member_id AS "memberId", mb.name AS "memberName",
              m.text, m.created_at AS "createdAt"
       FROM messages m JOIN members mb ON mb.id = m.member_id
       WHERE m.chat_id = ? AND m.seq > ?
       ORDER BY m.seq
       LIMIT ?`;

/**
 * The repository's statements with the bindings they take, built from named arguments: the
 * repository runs them, and the benchmark's straight-through-pg ceilings run the very same.
 */
export const MESSAGE_STATEMENTS = {
  insertMessage: {
    sql: INSERT_MESSAGE_SQL,
    /** Without a deadline (null) the insert waits as long as it must. */
    bindings: (a: {
      chatId: string;
      memberId: string;
      userId: string | null;
      text: string;
      deadline: Date | null;
    }) => [a.chatId, a.memberId, a.userId, a.userId, a.text, a.deadline],
  },
  historyPage: {
    sql: HISTORY_PAGE_SQL,
    bindings: (a: { chatId: string; afterSeq: string; limit: number }) => [a.chatId, a.afterSeq, a.limit],
  },
} as const;

export class MessagesRepository {
  constructor(
    private readonly knex: Knex,
    /** Where a read may run (a replica that has caught up, else the primary). */
    private readonly read: Database['read'] = (query) => query(knex),
  ) {}

  /**
   * Inserts the message if `memberId` is a member of the chat (owned by `userId` unless anonymous);
   * returns its id, or undefined when there is no such member.
   */
  async insertMessage(
    chatId: string,
    memberId: string,
    userId: string | null,
    text: string,
  ): Promise<string | undefined> {
    const deadline = statementDeadline(this.knex);
    const { insertMessage } = MESSAGE_STATEMENTS;
    const { rows } = await this.knex.raw<{ rows: { id: string }[] }>(
      insertMessage.sql,
      insertMessage.bindings({ chatId, memberId, userId, text, deadline }),
    );
    if (!rows[0] && deadline && Date.now() >= deadline.getTime()) {
      throw new DatabaseUnavailableError('query', 'the insert reached the database after its deadline');
    }
    return rows[0]?.id;
  }

  async page(chatId: string, afterSeq: string, limit: number): Promise<HistoryRow[]> {
    const { historyPage } = MESSAGE_STATEMENTS;
    const { rows } = await this.read((knex) =>
      knex.raw<{ rows: HistoryRow[] }>(historyPage.sql, historyPage.bindings({ chatId, afterSeq, limit })),
    );
    return rows;
  }
}
