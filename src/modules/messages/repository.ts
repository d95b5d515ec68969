import { DatabaseUnavailableError, statementDeadline, type Knex } from '../../infra/db.js';
import type { StoredEvent } from '../events/model.js';

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
// never pass a message that commits later with a smaller seq. The lock is taken by numbering the
// chat's next event (its `message` event, stored in the same statement, so it exists exactly when the
// message does). The member row is locked next (as its foreign key check would) so that the deadline,
// checked once both locks are held, is the last wait: an insert that reaches the server, or gets its
// locks, after the client gave up stores nothing.
const INSERT_MESSAGE_SQL = `WITH chat AS (UPDATE chats SET event_seq = event_seq + 1 WHERE id = ? RETURNING id, event_seq),
       member AS (SELECT mb.id, mb.chat_id, mb.name FROM members mb JOIN chat ON chat.id = mb.chat_id
                  WHERE mb.id = ? AND (?::uuid IS NULL OR mb.user_id = ?::uuid) FOR KEY SHARE OF mb),
       message AS (INSERT INTO messages (chat_id, member_id, text)
                   SELECT member.chat_id, member.id, ? FROM member
                   WHERE clock_timestamp() < coalesce(?::timestamptz, 'infinity')
                   RETURNING id, chat_id, member_id, text, created_at),
       event AS (INSERT INTO events (chat_id, seq, kind, payload)
                 SELECT message.chat_id, chat.event_seq, 'message', jsonb_build_object(
                   'chat_id', message.chat_id, 'message_id', message.id, 'user_id', message.member_id,
                   'user_name', member.name, 'text', message.text,
                   'created_at', to_char(message.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                 FROM message, chat, member
                 RETURNING seq, payload)
       SELECT message.id, event.seq, event.payload FROM message, event`;

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
  ): Promise<{ messageId: string; event: StoredEvent } | undefined> {
    const deadline = statementDeadline(this.knex);
    const { insertMessage } = MESSAGE_STATEMENTS;
    const { rows } = await this.knex.raw<{
      rows: { id: string; seq: string; payload: Record<string, unknown> }[];
    }>(insertMessage.sql, insertMessage.bindings({ chatId, memberId, userId, text, deadline }));
    if (!rows[0] && deadline && Date.now() >= deadline.getTime()) {
      throw new DatabaseUnavailableError('query', 'the insert reached the database after its deadline');
    }
    const row = rows[0];
    if (!row) return undefined;
    return {
      messageId: row.id,
      event: { chatId, seq: Number(row.seq), kind: 'message', data: row.payload },
    };
  }

  async page(chatId: string, afterSeq: string, limit: number): Promise<HistoryRow[]> {
    const { historyPage } = MESSAGE_STATEMENTS;
    const { rows } = await this.knex.raw<{ rows: HistoryRow[] }>(
      historyPage.sql,
      historyPage.bindings({ chatId, afterSeq, limit }),
    );
    return rows;
  }
}
