import type { Knex } from '../../infra/db.js';
import type { DurableKind, StoredEvent } from './model.js';

interface EventRow {
  chatId: string;
  seq: string;
  kind: DurableKind;
  userId: string | null;
  payload: Record<string, unknown>;
}

const toEvent = (row: EventRow): StoredEvent => ({
  chatId: row.chatId,
  seq: Number(row.seq),
  kind: row.kind,
  userId: row.userId,
  data: row.payload,
});

export class EventsRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * The chats `userId` is a member of (every chat for the anonymous caller), each with the number of
   * its last committed event (events after it are still to come) and when its last stored event was
   * created (seconds since the epoch; 0 when none is stored any more).
   */
  async chatsOf(userId: string | null): Promise<Map<string, { seq: number; activeAt: number }>> {
    const last = `LEFT JOIN LATERAL (SELECT created_at FROM events e WHERE e.chat_id = c.id
                                     ORDER BY e.seq DESC LIMIT 1) e ON true`;
    const { rows } = await this.knex.raw<{ rows: { id: string; seq: string; active_at: number | null }[] }>(
      userId === null
        ? `SELECT c.id, c.event_seq AS seq, extract(epoch FROM e.created_at)::float8 AS active_at
           FROM chats c ${last}`
        : `SELECT c.id, c.event_seq AS seq, extract(epoch FROM e.created_at)::float8 AS active_at
           FROM members m JOIN chats c ON c.id = m.chat_id ${last}
           WHERE m.user_id = ? AND m.left_at IS NULL`,
      userId === null ? [] : [userId],
    );
    return new Map(rows.map((row) => [row.id, { seq: Number(row.seq), activeAt: row.active_at ?? 0 }]));
  }

  /**
   * Where a resumed stream starts in chats its position left out as quiet (cursor.ts): after the last
   * event created at or before `cut` (seconds since the epoch) — or, when none of that age is stored
   * any more, before the first one stored — but never before the user's latest join of the chat.
   */
  async quietStarts(userId: string | null, chatIds: string[], cut: number): Promise<Map<string, number>> {
    if (chatIds.length === 0) return new Map();
    const { rows } = await this.knex.raw<{ rows: { chat_id: string; start: string }[] }>(
      `SELECT p.chat_id, greatest(
         coalesce(
           (SELECT e.seq FROM events e WHERE e.chat_id = p.chat_id AND e.created_at <= to_timestamp(?)
            ORDER BY e.seq DESC LIMIT 1),
           (SELECT e.seq - 1 FROM events e WHERE e.chat_id = p.chat_id ORDER BY e.seq LIMIT 1),
           c.event_seq),
         coalesce(
           (SELECT e.seq - 1 FROM events e
            WHERE e.chat_id = p.chat_id AND e.user_id = ? AND e.kind = 'member' AND e.payload->>'action' = 'joined'
            ORDER BY e.seq DESC LIMIT 1),
           0)) AS start
       FROM unnest(?::uuid[]) AS p(chat_id) JOIN chats c ON c.id = p.chat_id`,
      [cut, userId, chatIds],
    );
    return new Map(rows.map((row) => [row.chat_id, Number(row.start)]));
  }

  /** Up to `limit` stored events after the given positions, in each chat's order. */
  async after(positions: Map<string, number>, limit: number): Promise<StoredEvent[]> {
    if (positions.size === 0) return [];
    const { rows } = await this.knex.raw<{ rows: EventRow[] }>(
      `SELECT e.chat_id AS "chatId", e.seq, e.kind, e.user_id AS "userId", e.payload
       FROM unnest(?::uuid[], ?::bigint[]) AS p(chat_id, seq)
       JOIN LATERAL (SELECT * FROM events e WHERE e.chat_id = p.chat_id AND e.seq > p.seq
                     ORDER BY e.seq LIMIT ?) e ON true
       ORDER BY e.chat_id, e.seq
       LIMIT ?`,
      [[...positions.keys()], [...positions.values()], limit, limit],
    );
    return rows.map(toEvent);
  }

  /** The chats each of `userIds` is a member of now. */
  async membershipsOf(userIds: string[]): Promise<Map<string, string[]>> {
    const rows = await this.knex<{ chat_id: string; user_id: string }>('members')
      .whereIn('user_id', userIds)
      .whereNull('left_at')
      .select('user_id', 'chat_id');
    const chats = new Map<string, string[]>();
    for (const row of rows) chats.set(row.user_id, [...(chats.get(row.user_id) ?? []), row.chat_id]);
    return chats;
  }

  /** The number of the event that made `userId` a member of the chat (its latest join), if stored. */
  async joinedAt(chatId: string, userId: string): Promise<number | undefined> {
    const { rows } = await this.knex.raw<{ rows: { seq: string | null }[] }>(
      `SELECT max(seq) AS seq FROM events
       WHERE chat_id = ? AND user_id = ? AND kind = 'member' AND payload->>'action' = 'joined'`,
      [chatId, userId],
    );
    const seq = rows[0]?.seq;
    return seq === null || seq === undefined ? undefined : Number(seq);
  }

  /** The caller's member in the chat, as other members see it. */
  async memberOf(chatId: string, userId: string): Promise<{ memberId: string; name: string } | undefined> {
    const row = await this.knex<{ id: string; name: string; chat_id: string; user_id: string }>('members')
      .where({ chat_id: chatId, user_id: userId })
      .whereNull('left_at')
      .first('id', 'name');
    return row && { memberId: row.id, name: row.name };
  }

  /**
   * The user's member id in each of their chats of at most `maxMembers` members (presence events
   * name members; in bigger chats a presence change would reach too many). Members are counted up to
   * one past the limit only.
   */
  async membersOf(userId: string, maxMembers: number): Promise<{ chatId: string; memberId: string }[]> {
    const { rows } = await this.knex.raw<{ rows: { chat_id: string; id: string }[] }>(
      `SELECT m.chat_id, m.id FROM members m
       WHERE m.user_id = ? AND m.left_at IS NULL
         AND (SELECT count(*) FROM (SELECT 1 FROM members o WHERE o.chat_id = m.chat_id AND o.left_at IS NULL
                                    LIMIT ?) counted) <= ?`,
      [userId, maxMembers + 1, maxMembers],
    );
    return rows.map((row) => ({ chatId: row.chat_id, memberId: row.id }));
  }

  /** Forgets events stored more than `seconds` ago. */
  async prune(seconds: number): Promise<number> {
    return this.knex('events')
      .where('created_at', '<', this.knex.raw(`now() - make_interval(secs => ?)`, [seconds]))
      .delete();
  }
}
