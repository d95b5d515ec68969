import { DatabaseUnavailableError, statementDeadline, type Knex } from '../../infra/db.js';

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
// never pass a message that commits later with a smaller seq. The member row is locked next (for the
// update of its sent count the messages trigger makes) so that the deadline, checked once both locks
// are held, is the last wait: an insert that reaches the server, or gets its locks, after the client
// gave up stores nothing. Members who left cannot post.
const INSERT_MESSAGE_SQL = `WITH chat AS (SELECT id FROM chats WHERE id = ? FOR NO KEY UPDATE),
       member AS (SELECT mb.id, mb.chat_id FROM members mb JOIN chat ON chat.id = mb.chat_id
                  WHERE mb.id = ? AND (?::uuid IS NULL OR mb.user_id = ?::uuid) AND mb.left_at IS NULL
                  FOR NO KEY UPDATE OF mb)
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

const PAGE_COLUMNS = `m.seq, m.id AS "messageId", m.member_id AS "memberId", mb.name AS "memberName",
              m.text, m.created_at AS "createdAt"`;

/**
 * Up to `limit` messages before position `beforeSeq`, newest first. The positions come from an
 * index-only scan of (chat_id, seq) walked backwards: left to itself, the planner may walk the global
 * seq index back from its end for a chat that holds most messages, over every newer message of every
 * other chat.
 */
const OLDER_SQL = `SELECT ${PAGE_COLUMNS}
       FROM messages m JOIN members mb ON mb.id = m.member_id
       WHERE m.chat_id = :chatId
         AND m.seq IN (SELECT p.seq FROM messages p WHERE p.chat_id = :chatId AND p.seq < :beforeSeq
                       ORDER BY p.chat_id DESC, p.seq DESC LIMIT :limit)
       ORDER BY m.seq DESC`;

const MAX_POSITION = '9223372036854775807';
const UNIQUE_VIOLATION = '23505';
/** How long a retry with the same Idempotency-Key gets the first answer. */
const IDEMPOTENCY_TTL = "interval '24 hours'";

/** An Idempotency-Key as stored: per owner (a user, or '' for anonymous callers), with the request's hash. */
export interface IdempotencyKey {
  owner: string;
  key: string;
  requestHash: string;
}

const HAS_MESSAGE_AFTER_SQL = `SELECT EXISTS (SELECT 1 FROM messages WHERE chat_id = ? AND seq > ?) AS "newer"`;

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

  /**
   * The same insert, recording `key` in the same statement: when the key is already taken (by an
   * earlier attempt, committed or racing this one) the statement fails whole, so the message is
   * stored once. Says so (`taken`), else gives the new message's id, undefined when there is no
   * such member.
   */
  async insertMessageOnce(
    chatId: string,
    memberId: string,
    userId: string | null,
    text: string,
    key: IdempotencyKey,
  ): Promise<{ taken: true } | { taken: false; messageId: string | undefined }> {
    const deadline = statementDeadline(this.knex);
    const { insertMessage } = MESSAGE_STATEMENTS;
    try {
      const { rows } = await this.knex.raw<{ rows: { id: string }[] }>(
        `WITH sent AS (${insertMessage.sql})
         INSERT INTO idempotency_keys (owner, key, request_hash, message_id)
         SELECT ?, ?, ?, id FROM sent
         RETURNING message_id AS id`,
        [
          ...insertMessage.bindings({ chatId, memberId, userId, text, deadline }),
          key.owner,
          key.key,
          key.requestHash,
        ],
      );
      if (!rows[0] && deadline && Date.now() >= deadline.getTime()) {
        throw new DatabaseUnavailableError('query', 'the insert reached the database after its deadline');
      }
      return { taken: false, messageId: rows[0]?.id };
    } catch (error) {
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) return { taken: true };
      throw error;
    }
  }

  /** What the key recorded, unless it is older than IDEMPOTENCY_TTL (then it is dropped). */
  async recordedSend(key: IdempotencyKey): Promise<{ requestHash: string; messageId: string } | undefined> {
    await this.knex.raw(
      `DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND created_at < now() - ${IDEMPOTENCY_TTL}`,
      [key.owner, key.key],
    );
    const { rows } = await this.knex.raw<{ rows: { requestHash: string; messageId: string }[] }>(
      'SELECT request_hash AS "requestHash", message_id AS "messageId" FROM idempotency_keys WHERE owner = ? AND key = ?',
      [key.owner, key.key],
    );
    return rows[0];
  }

  /** Removes the keys past IDEMPOTENCY_TTL; returns how many. */
  async expireIdempotencyKeys(): Promise<number> {
    const { rowCount } = await this.knex.raw<{ rowCount: number }>(
      `DELETE FROM idempotency_keys WHERE created_at < now() - ${IDEMPOTENCY_TTL}`,
    );
    return rowCount;
  }

  async page(chatId: string, afterSeq: string, limit: number): Promise<HistoryRow[]> {
    const { historyPage } = MESSAGE_STATEMENTS;
    const { rows } = await this.knex.raw<{ rows: HistoryRow[] }>(
      historyPage.sql,
      historyPage.bindings({ chatId, afterSeq, limit }),
    );
    return rows;
  }

  /** Up to `limit` messages right before position `beforeSeq` (all the newest when null), newest first. */
  async older(chatId: string, beforeSeq: string | null, limit: number): Promise<HistoryRow[]> {
    const { rows } = await this.knex.raw<{ rows: HistoryRow[] }>(OLDER_SQL, {
      chatId,
      beforeSeq: beforeSeq ?? MAX_POSITION,
      limit,
    });
    return rows;
  }

  /** The position of a message of this chat, or undefined. */
  async positionOf(chatId: string, messageId: string): Promise<string | undefined> {
    const { rows } = await this.knex.raw<{ rows: { seq: string }[] }>(
      'SELECT seq FROM messages WHERE id = ? AND chat_id = ?',
      [messageId, chatId],
    );
    return rows[0]?.seq;
  }

  /** Whether the chat has a message after position `afterSeq`: one probe of (chat_id, seq). */
  async hasMessageAfter(chatId: string, afterSeq: string): Promise<boolean> {
    const { rows } = await this.knex.raw<{ rows: { newer: boolean }[] }>(HAS_MESSAGE_AFTER_SQL, [
      chatId,
      afterSeq,
    ]);
    return rows[0]?.newer === true;
  }
}
