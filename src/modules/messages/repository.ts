import {
  DatabaseUnavailableError,
  isoTimeSql,
  run,
  statement,
  statementDeadline,
  type Database,
  type Knex,
} from '../../infra/db.js';
import { VISIBLE_SQL } from '../chats/repository.js';
import type { StoredEvent } from '../events/model.js';

/** A message as history shows it, in the code's names. */
export interface HistoryRow {
  seq: string;
  messageId: string;
  memberId: string;
  memberName: string;
  text: string;
  /** ISO 8601 in UTC, to the millisecond, as clients get it. */
  createdAt: string;
}

// The chat row lock makes a chat's inserts take their seq in commit order: a reader's cursor can
// never pass a message that commits later with a smaller seq. The lock is taken by numbering the
// chat's next event (its `message` event, stored in the same statement, so it exists exactly when the
// message does). A number is only taken for a current member of the chat owned by the caller, and
// before the deadline (checked again by Postgres once a wait for the chat row is over): a refused or
// late send leaves no gap in the chat's event numbers, which would hold the chat's next event on
// every instance until it reads the database. The member row is locked next (for the update of its
// sent count the messages trigger makes) so that the deadline, checked once both locks are held, is
// the last wait: an insert that reaches the server, or gets its locks, after the client gave up
// stores nothing. Members who left cannot post. With `recordKey`, the Idempotency-Key is stored by
// the same statement: a key already taken makes it fail whole, so a message is stored once per key.
const POSTER = `mb.id = :memberId AND (CAST(:userId AS uuid) IS NULL OR mb.user_id = CAST(:userId AS uuid))
                    AND mb.left_at IS NULL`;
const BEFORE_DEADLINE = `clock_timestamp() < coalesce(CAST(:deadline AS timestamptz), 'infinity')`;
const insertMessageSql = (recordKey: boolean) => `WITH chat AS (UPDATE chats SET event_seq = event_seq + 1
              WHERE id = :chatId AND ${BEFORE_DEADLINE}
                AND EXISTS (SELECT 1 FROM members mb WHERE mb.chat_id = :chatId AND ${POSTER})
              RETURNING id, event_seq),
       member AS (SELECT mb.id, mb.chat_id, mb.name FROM members mb JOIN chat ON chat.id = mb.chat_id
                  WHERE ${POSTER}
                  FOR NO KEY UPDATE OF mb),
       message AS (INSERT INTO messages (chat_id, member_id, text)
                   SELECT member.chat_id, member.id, CAST(:text AS text) FROM member
                   WHERE ${BEFORE_DEADLINE}
                   RETURNING id, chat_id, member_id, text, created_at),
       event AS (INSERT INTO events (chat_id, seq, kind, payload)
                 SELECT message.chat_id, chat.event_seq, 'message', jsonb_build_object(
                   'chat_id', message.chat_id, 'message_id', message.id, 'user_id', message.member_id,
                   'user_name', member.name, 'text', message.text,
                   'created_at', ${isoTimeSql('message.created_at')})
                 FROM message, chat, member
                 RETURNING seq, payload)${
                   recordKey
                     ? `,
       recorded AS (INSERT INTO idempotency_keys (owner, key, request_hash, message_id)
                    SELECT :owner, :key, :requestHash, id FROM message RETURNING message_id)`
                     : ''
                 }
       SELECT message.id, event.seq, event.payload FROM message, event`;

/** What an insert needs: without a deadline (null) it waits as long as it must. */
interface InsertArgs {
  chatId: string;
  memberId: string;
  userId: string | null;
  text: string;
  deadline: Date | null;
}

interface InsertedRow {
  id: string;
  seq: string;
  payload: Record<string, unknown>;
}

const INSERT_MESSAGE = statement<InsertArgs, InsertedRow>('messages.insert', insertMessageSql(false));
const INSERT_MESSAGE_ONCE = statement<InsertArgs & IdempotencyKey, InsertedRow>(
  'messages.insert-once',
  insertMessageSql(true),
);

const PAGE_COLUMNS = `m.seq, m.id AS "messageId", m.member_id AS "memberId", mb.name AS "memberName",
              m.text, ${isoTimeSql('m.created_at')} AS "createdAt"`;

/** A page's rows, with whether the viewer may see the chat (false: one row, nothing else in it). */
type VisibleRow = { visible: boolean } & (HistoryRow | { seq: null });

/**
 * `range` (PAGE_COLUMNS from `messages m JOIN members mb`, in the order the page shows) for a viewer:
 * the membership rule is checked first, in the same statement, and the range, gated by `v.visible`
 * in its WHERE, is only read when it holds. One row with `visible` false when it does not, one with
 * `seq` null for an empty page.
 */
const forViewer = (
  range: string,
  order: 'ASC' | 'DESC',
) => `WITH v AS MATERIALIZED (SELECT ${VISIBLE_SQL} AS visible)
       SELECT v.visible, p.* FROM v LEFT JOIN LATERAL (${range}) p ON true
       ORDER BY p.seq ${order}`;

/** Up to `limit` messages after position `afterSeq`, oldest first: a keyset range on (chat_id, seq). */
const HISTORY_PAGE = statement<PageArgs & { afterSeq: string }, VisibleRow>(
  'messages.page',
  forViewer(
    `SELECT ${PAGE_COLUMNS}
       FROM messages m JOIN members mb ON mb.id = m.member_id
       WHERE v.visible AND m.chat_id = :chatId AND m.seq > :afterSeq
       ORDER BY m.seq
       LIMIT :limit`,
    'ASC',
  ),
);

/** Past every position: `before` it is the newest message. */
const MAX_POSITION = '9223372036854775807';

/**
 * Up to `limit` messages before position `beforeSeq` (null: the newest), newest first. The positions
 * come from an index-only scan of (chat_id, seq) walked backwards: left to itself, the planner may
 * walk the global seq index back from its end for a chat that holds most messages, over every newer
 * message of every other chat.
 */
const OLDER_PAGE = statement<PageArgs & { beforeSeq: string | null }, VisibleRow>(
  'messages.older',
  forViewer(
    `SELECT ${PAGE_COLUMNS}
       FROM messages m JOIN members mb ON mb.id = m.member_id
       WHERE v.visible AND m.chat_id = :chatId
         AND m.seq IN (SELECT p.seq FROM messages p
                       WHERE p.chat_id = :chatId AND p.seq < coalesce(CAST(:beforeSeq AS bigint), ${MAX_POSITION})
                       ORDER BY p.chat_id DESC, p.seq DESC LIMIT :limit)`,
    'DESC',
  ),
);

/** Which chat and who reads it (null: an anonymous caller), and how many messages at most. */
interface PageArgs {
  chatId: string;
  viewer: string | null;
  limit: number;
}

const UNIQUE_VIOLATION = '23505';
/** How long a retry with the same Idempotency-Key gets the first answer. */
const IDEMPOTENCY_TTL = "interval '24 hours'";

/** A stored message and the event that tells the chat's streams about it. */
export interface SentMessage {
  messageId: string;
  event: StoredEvent;
}

/** An Idempotency-Key as stored: per owner (a user, or '' for anonymous callers), with the request's hash. */
export interface IdempotencyKey {
  owner: string;
  key: string;
  requestHash: string;
}

const HAS_MESSAGE_AFTER = statement<{ chatId: string; afterSeq: string }, { newer: boolean }>(
  'messages.has-after',
  `SELECT EXISTS (SELECT 1 FROM messages WHERE chat_id = :chatId AND seq > :afterSeq) AS "newer"`,
);

/** The rows of a page for a viewer; undefined when the viewer may not see the chat. */
function visibleRows({ rows }: { rows: VisibleRow[] }): HistoryRow[] | undefined {
  if (rows[0]?.visible !== true) return undefined;
  return rows[0].seq === null ? [] : (rows as HistoryRow[]);
}

/**
 * The repository's statements, with the arguments they take by name: the repository runs them, and
 * the benchmark's straight-through-pg ceilings run the very same (`text`, `values(args)`).
 */
export const MESSAGE_STATEMENTS = {
  insertMessage: INSERT_MESSAGE,
  historyPage: HISTORY_PAGE,
  olderPage: OLDER_PAGE,
} as const;

export class MessagesRepository {
  constructor(
    private readonly knex: Knex,
    /** Where a read may run (a replica that has caught up, else the primary). */
    private readonly read: Database['read'] = (query) => query(knex),
  ) {}

  /**
   * Inserts the message if `memberId` is a current member of the chat (owned by `userId` unless
   * anonymous), with its `message` event; undefined when there is no such member.
   */
  async insertMessage(
    chatId: string,
    memberId: string,
    userId: string | null,
    text: string,
  ): Promise<SentMessage | undefined> {
    const deadline = statementDeadline(this.knex);
    const args = { chatId, memberId, userId, text, deadline };
    return this.sent(chatId, deadline, await run(this.knex, INSERT_MESSAGE, args));
  }

  /**
   * The same insert, recording `key` in the same statement: when the key is already taken (by an
   * earlier attempt, committed or racing this one) the statement fails whole, so the message is
   * stored once. Says so (`taken`), else gives the new message, undefined when there is no such
   * member.
   */
  async insertMessageOnce(
    chatId: string,
    memberId: string,
    userId: string | null,
    text: string,
    key: IdempotencyKey,
  ): Promise<{ taken: true } | { taken: false; sent: SentMessage | undefined }> {
    const deadline = statementDeadline(this.knex);
    const args = { chatId, memberId, userId, text, deadline, ...key };
    try {
      const result = await run(this.knex, INSERT_MESSAGE_ONCE, args);
      return { taken: false, sent: this.sent(chatId, deadline, result) };
    } catch (error) {
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) return { taken: true };
      throw error;
    }
  }

  /** The inserted message and its event; a statement that stored nothing past its deadline is an outage. */
  private sent(
    chatId: string,
    deadline: Date | null,
    { rows }: { rows: InsertedRow[] },
  ): SentMessage | undefined {
    const row = rows[0];
    if (!row && deadline && Date.now() >= deadline.getTime()) {
      throw new DatabaseUnavailableError('query', 'the insert reached the database after its deadline');
    }
    if (!row) return undefined;
    return { messageId: row.id, event: { chatId, seq: Number(row.seq), kind: 'message', data: row.payload } };
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

  /**
   * Up to `limit` messages after position `afterSeq`, oldest first, for `viewer` (null: an anonymous
   * caller); undefined when the viewer may not see the chat (checked in the same statement).
   */
  async page(
    viewer: string | null,
    chatId: string,
    afterSeq: string,
    limit: number,
  ): Promise<HistoryRow[] | undefined> {
    const args = { viewer, chatId, afterSeq, limit };
    return visibleRows(await this.read((knex) => run(knex, HISTORY_PAGE, args)));
  }

  /**
   * Up to `limit` messages right before position `beforeSeq` (all the newest when null), newest
   * first, for `viewer`; undefined when the viewer may not see the chat.
   */
  async older(
    viewer: string | null,
    chatId: string,
    beforeSeq: string | null,
    limit: number,
  ): Promise<HistoryRow[] | undefined> {
    const args = { viewer, chatId, beforeSeq, limit };
    return visibleRows(await run(this.knex, OLDER_PAGE, args));
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
    const { rows } = await run(this.knex, HAS_MESSAGE_AFTER, { chatId, afterSeq });
    return rows[0]?.newer === true;
  }
}
