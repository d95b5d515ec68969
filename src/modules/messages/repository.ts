import { DatabaseUnavailableError, statementDeadline, type Knex } from '../../infra/db.js';

export interface HistoryRow {
  seq: string;
  message_id: string;
  user_id: string;
  user_name: string;
  text: string;
  created_at: Date;
}

// The chat row lock makes a chat's inserts take their seq in commit order: a reader's cursor can
// never pass a message that commits later with a smaller seq. The member row is locked next (as its
// foreign key check would) so that the deadline, checked once both locks are held, is the last wait:
// an insert that reaches the server, or gets its locks, after the client gave up stores nothing.
export const INSERT_MESSAGE_SQL = `WITH chat AS (SELECT id FROM chats WHERE id = ? FOR NO KEY UPDATE),
       member AS (SELECT mb.id, mb.chat_id FROM members mb JOIN chat ON chat.id = mb.chat_id
                  WHERE mb.id = ? AND (?::uuid IS NULL OR mb.user_id = ?::uuid) FOR KEY SHARE OF mb)
       INSERT INTO messages (chat_id, member_id, text)
       SELECT member.chat_id, member.id, ? FROM member
       WHERE clock_timestamp() < coalesce(?::timestamptz, 'infinity')
       RETURNING id`;

/** Up to `limit` messages after position `afterSeq`, oldest first: a keyset range on (chat_id, seq). */
export const HISTORY_PAGE_SQL = `SELECT m.seq, m.id AS message_id, m.member_id AS user_id, mb.name AS user_name, m.text, m.created_at
       FROM messages m JOIN members mb ON mb.id = m.member_id
       WHERE m.chat_id = ? AND m.seq > ?
       ORDER BY m.seq
       LIMIT ?`;

export class MessagesRepository {
  constructor(private readonly knex: Knex) {}

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
    const { rows } = await this.knex.raw<{ rows: { id: string }[] }>(INSERT_MESSAGE_SQL, [
      chatId,
      memberId,
      userId,
      userId,
      text,
      deadline,
    ]);
    if (!rows[0] && deadline && Date.now() >= deadline.getTime()) {
      throw new DatabaseUnavailableError('query', 'the insert reached the database after its deadline');
    }
    return rows[0]?.id;
  }

  async page(chatId: string, afterSeq: string, limit: number): Promise<HistoryRow[]> {
    const { rows } = await this.knex.raw<{ rows: HistoryRow[] }>(HISTORY_PAGE_SQL, [chatId, afterSeq, limit]);
    return rows;
  }
}
