import { isoTimeSql, run, statement, type Database, type Knex } from '../../infra/db.js';
import { appendEvent } from '../events/append.js';
import type { StoredEvent } from '../events/model.js';

export interface Joined {
  memberId: string;
  event: StoredEvent;
}

/** The message a chat list shows last, in the code's names. */
export interface LastMessage {
  messageId: string;
  memberId: string;
  memberName: string;
  text: string;
  /** ISO 8601 in UTC, to the millisecond. */
  createdAt: string;
}

/** One of the caller's chats as their chat list shows it. */
export interface MyChat {
  chatId: string;
  chatName: string;
  memberId: string;
  memberName: string;
  unread: number;
  lastMessage: LastMessage | null;
  /** ISO 8601 in UTC, to the millisecond. */
  lastActivityAt: string;
  /** last_activity_at to the microsecond, for the cursor (lastActivityAt shows milliseconds only). */
  activityKey: string;
}

/** A position in a chat list: the last chat shown. */
export interface ChatListPosition {
  activityKey: string;
  chatId: string;
}

export interface ChatMember {
  memberId: string;
  /** The member's account; null for an anonymous member (authentication off). */
  userId: string | null;
  memberName: string;
  readUpTo: string | null;
}

/**
 * A membership's unread count from the counters the messages trigger keeps (migration 004): what
 * was unread at its read mark plus what others sent since. O(1) per chat.
 */
const UNREAD = `(mb.read_unread + (c.message_count - mb.read_message_count) - (mb.sent_count - mb.read_sent_count))`;

/**
 * The membership rule as SQL, for a statement that checks it along with what it reads: true when
 * `:viewer` is a current member of chat `:chatId`; an anonymous caller (`:viewer` null, authentication
 * off) sees every chat there is.
 */
export const VISIBLE_SQL = `CASE WHEN CAST(:viewer AS uuid) IS NULL
         THEN EXISTS (SELECT 1 FROM chats vc WHERE vc.id = :chatId)
         ELSE EXISTS (SELECT 1 FROM members vm WHERE vm.chat_id = :chatId AND vm.user_id = CAST(:viewer AS uuid)
                        AND vm.left_at IS NULL) END`;

const VISIBLE = statement<{ chatId: string; viewer: string | null }, { visible: boolean }>(
  'chats.visible',
  `SELECT ${VISIBLE_SQL} AS visible`,
);

// A page of the chat list sorts the user's current memberships by their chats' activity: the cost
// grows with the number of chats the user is in (an index-only scan of (user_id, chat_id) and a
// lookup of each chat), never with the number of messages. Member rows, unread counts and last
// messages are read for the page's chats only.
const MY_CHATS = statement<
  { userId: string; afterAt: string | null; afterChat: string | null; limit: number },
  MyChatRow
>(
  'chats.mine',
  `WITH page AS (
         SELECT c.id AS chat_id, c.name AS chat_name, c.message_count, c.last_seq, c.last_activity_at
         FROM members mb JOIN chats c ON c.id = mb.chat_id
         WHERE mb.user_id = :userId AND mb.left_at IS NULL
           AND (CAST(:afterAt AS timestamptz) IS NULL
                OR (c.last_activity_at, c.id) < (CAST(:afterAt AS timestamptz), CAST(:afterChat AS uuid)))
         ORDER BY c.last_activity_at DESC, c.id DESC
         LIMIT :limit)
       SELECT c.chat_id AS "chatId", c.chat_name AS "chatName", mb.id AS "memberId",
              mb.name AS "memberName", ${UNREAD}::int AS unread,
              ${isoTimeSql('c.last_activity_at')} AS "lastActivityAt",
              to_char(c.last_activity_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "activityKey",
              m.id AS "lastMessageId", m.member_id AS "lastMemberId", sender.name AS "lastMemberName",
              m.text AS "lastText", ${isoTimeSql('m.created_at')} AS "lastCreatedAt"
       FROM page c
       JOIN members mb ON mb.chat_id = c.chat_id AND mb.user_id = :userId
       LEFT JOIN messages m ON m.chat_id = c.chat_id AND m.seq = c.last_seq
       LEFT JOIN members sender ON sender.id = m.member_id
       ORDER BY c.last_activity_at DESC, c.chat_id DESC`,
);

/** The repository's statements on the hot paths, for the benchmark's straight-through-pg ceilings. */
export const CHAT_STATEMENTS = { myChats: MY_CHATS, visible: VISIBLE } as const;

interface MyChatRow {
  chatId: string;
  chatName: string;
  memberId: string;
  memberName: string;
  unread: number;
  lastActivityAt: string;
  activityKey: string;
  lastMessageId: string | null;
  lastMemberId: string;
  lastMemberName: string;
  lastText: string;
  lastCreatedAt: string;
}

export class ChatsRepository {
  constructor(
    private readonly knex: Knex,
    /**
     * Where a list read may run: a replica that has replayed everything committed when the read
     * began (so the caller's own joins and sends show), else the primary.
     */
    private readonly read: Database['read'] = (query) => query(knex),
  ) {}

  async insertChat(name: string, createdBy: string | null): Promise<string> {
    const [row] = await this.knex('chats').insert({ name, created_by: createdBy }).returning('id');
    return (row as { id: string }).id;
  }

  async chatExists(chatId: string): Promise<boolean> {
    return this.visible(chatId, null);
  }

  async isMember(chatId: string, userId: string): Promise<boolean> {
    return this.visible(chatId, userId);
  }

  private async visible(chatId: string, viewer: string | null): Promise<boolean> {
    const { rows } = await run(this.knex, VISIBLE, { chatId, viewer });
    return rows[0]?.visible === true;
  }

  /**
   * The caller's member id in the chat: created on first join (a `joined` event); on the next the
   * display name is updated (`renamed`), and a membership that was left is taken up again with the
   * same id (`joined`). Undefined when there is no such chat. The event is numbered and stored in the
   * same statement, under the chat row lock (migration 005).
   */
  async upsertMember(chatId: string, userId: string, name: string): Promise<Joined | undefined> {
    // Every part of one statement reads the same snapshot: `was_left` is the row before the update.
    return this.joinWithEvent(
      `INSERT INTO members (chat_id, user_id, name) SELECT chat.id, ?::uuid, ? FROM chat
       ON CONFLICT (chat_id, user_id) WHERE user_id IS NOT NULL
       DO UPDATE SET name = EXCLUDED.name, left_at = NULL
       RETURNING id, name,
                 (xmax = 0 OR EXISTS (SELECT 1 FROM members p WHERE p.id = members.id AND p.left_at IS NOT NULL))
                   AS inserted`,
      chatId,
      userId,
      name,
    );
  }

  async insertAnonymousMember(chatId: string, name: string): Promise<Joined | undefined> {
    return this.joinWithEvent(
      `INSERT INTO members (chat_id, user_id, name) SELECT chat.id, ?::uuid, ? FROM chat
       RETURNING id, name, true AS inserted`,
      chatId,
      null,
      name,
    );
  }

  private async joinWithEvent(
    upsert: string,
    chatId: string,
    userId: string | null,
    name: string,
  ): Promise<Joined | undefined> {
    const { rows } = await this.knex.raw<{
      rows: { id: string; seq: string; payload: Record<string, unknown> }[];
    }>(
      `WITH chat AS (UPDATE chats SET event_seq = event_seq + 1 WHERE id = ? RETURNING id, event_seq),
       member AS (${upsert}),
       event AS (INSERT INTO events (chat_id, seq, kind, user_id, payload)
                 SELECT chat.id, chat.event_seq, 'member', ?::uuid, jsonb_build_object(
                   'chat_id', chat.id, 'user_id', member.id, 'user_name', member.name,
                   'action', CASE WHEN member.inserted THEN 'joined' ELSE 'renamed' END)
                 FROM chat, member
                 RETURNING seq, payload)
       SELECT member.id, event.seq, event.payload FROM member, event`,
      [chatId, userId, name, userId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      memberId: row.id,
      event: { chatId, seq: Number(row.seq), kind: 'member', userId, data: row.payload },
    };
  }

  /**
   * Ends the membership if it is current and owned by `userId` (anonymous members by anonymous
   * callers), with its `left` event; undefined when there is no such membership. The chat row is
   * locked first, as a send locks it, so the two never wait for each other crosswise.
   */
  async leave(chatId: string, memberId: string, userId: string | null): Promise<StoredEvent | undefined> {
    const owned = `(user_id = CAST(:userId AS uuid) OR (CAST(:userId AS uuid) IS NULL AND user_id IS NULL))`;
    const { rows } = await this.knex.raw<{ rows: { seq: string; payload: Record<string, unknown> }[] }>(
      `WITH chat AS (UPDATE chats SET event_seq = event_seq + 1
                     WHERE id = :chatId AND EXISTS (SELECT 1 FROM members WHERE id = :memberId
                       AND chat_id = :chatId AND left_at IS NULL AND ${owned})
                     RETURNING id, event_seq),
       gone AS (UPDATE members SET left_at = now() FROM chat
                WHERE members.id = :memberId AND members.chat_id = chat.id AND members.left_at IS NULL
                  AND ${owned}
                RETURNING members.id, members.name),
       event AS (INSERT INTO events (chat_id, seq, kind, user_id, payload)
                 SELECT chat.id, chat.event_seq, 'member', CAST(:userId AS uuid), jsonb_build_object(
                   'chat_id', chat.id, 'user_id', gone.id, 'user_name', gone.name, 'action', 'left')
                 FROM chat, gone
                 RETURNING seq, payload)
       SELECT seq, payload FROM event`,
      { chatId, memberId, userId },
    );
    const row = rows[0];
    return row && { chatId, seq: Number(row.seq), kind: 'member', userId, data: row.payload };
  }

  /** The user's chats, most recent activity first, after `after` (the last chat of the previous page). */
  async myChats(userId: string, after: ChatListPosition | undefined, limit: number): Promise<MyChat[]> {
    const args = { userId, afterAt: after?.activityKey ?? null, afterChat: after?.chatId ?? null, limit };
    const { rows } = await this.read((knex) => run(knex, MY_CHATS, args));
    return rows.map((row) => ({
      chatId: row.chatId,
      chatName: row.chatName,
      memberId: row.memberId,
      memberName: row.memberName,
      unread: row.unread,
      lastActivityAt: row.lastActivityAt,
      activityKey: row.activityKey,
      lastMessage:
        row.lastMessageId === null
          ? null
          : {
              messageId: row.lastMessageId,
              memberId: row.lastMemberId,
              memberName: row.lastMemberName,
              text: row.lastText,
              createdAt: row.lastCreatedAt,
            },
    }));
  }

  /** Every chat the user is a current member of. */
  async chatIdsOf(userId: string): Promise<string[]> {
    const { rows } = await this.read((knex) =>
      knex.raw<{ rows: { chatId: string }[] }>(
        'SELECT chat_id AS "chatId" FROM members WHERE user_id = ? AND left_at IS NULL',
        [userId],
      ),
    );
    return rows.map((row) => row.chatId);
  }

  /** Current members of the chat by member id, after `afterMemberId`. */
  async members(chatId: string, afterMemberId: string | undefined, limit: number): Promise<ChatMember[]> {
    const { rows } = await this.read((knex) =>
      knex.raw<{ rows: ChatMember[] }>(
        `SELECT mb.id AS "memberId", mb.user_id AS "userId", mb.name AS "memberName", m.id AS "readUpTo"
       FROM members mb
       LEFT JOIN messages m ON mb.read_seq > 0 AND m.chat_id = mb.chat_id AND m.seq = mb.read_seq
       WHERE mb.chat_id = :chatId AND mb.left_at IS NULL
         AND (CAST(:after AS uuid) IS NULL OR mb.id > CAST(:after AS uuid))
       ORDER BY mb.id
       LIMIT :limit`,
        { chatId, after: afterMemberId ?? null, limit },
      ),
    );
    return rows;
  }

  /**
   * Moves the user's read position in the chat forward to the message, never back; returns the
   * unread count after it (and the `read` event when the position moved), undefined when the user
   * is not a member, null when the message is not in the chat. The member row is locked before the
   * count, so the count after the position and the counters are read in one later snapshot that no
   * send of this member can slip into.
   */
  async markRead(
    chatId: string,
    userId: string,
    messageId: string,
  ): Promise<{ unread: number; event: StoredEvent | undefined } | null | undefined> {
    return this.knex.transaction(async (trx) => {
      // The chat row first, as a send takes it: the read event is numbered under it.
      await trx.raw('SELECT id FROM chats WHERE id = ? FOR NO KEY UPDATE', [chatId]);
      const member = await trx('members')
        .where({ chat_id: chatId, user_id: userId })
        .whereNull('left_at')
        .forUpdate()
        .first('id');
      if (!member) return undefined;
      const target = await trx.raw<{ rows: { seq: string }[] }>(
        'SELECT seq FROM messages WHERE id = ? AND chat_id = ?',
        [messageId, chatId],
      );
      const seq = target.rows[0]?.seq;
      if (seq === undefined) return null;
      const moved = await trx.raw<{ rowCount: number }>(
        `UPDATE members mb
            SET read_seq = :seq,
                read_unread = (SELECT count(*) FROM messages m
                               WHERE m.chat_id = :chatId AND m.seq > :seq AND m.member_id <> mb.id),
                read_message_count = (SELECT message_count FROM chats WHERE id = :chatId),
                read_sent_count = mb.sent_count
          WHERE mb.id = :memberId AND mb.read_seq < :seq`,
        { chatId, memberId: member.id, seq },
      );
      const { rows } = await trx.raw<{ rows: { unread: number }[] }>(
        `SELECT ${UNREAD}::int AS unread FROM members mb JOIN chats c ON c.id = mb.chat_id WHERE mb.id = ?`,
        [member.id],
      );
      // Only a mark that moved is news for the chat's streams.
      const event = moved.rowCount
        ? await appendEvent(trx, {
            chatId,
            kind: 'read',
            userId,
            data: { chat_id: chatId, user_id: member.id, read_up_to: messageId },
          })
        : undefined;
      return { unread: rows[0]!.unread, event };
    });
  }
}
