import type { Knex } from '../../infra/db.js';
import type { StoredEvent } from '../events/model.js';

export interface Joined {
  memberId: string;
  event: StoredEvent;
}

export class ChatsRepository {
  constructor(private readonly knex: Knex) {}

  async insertChat(name: string, createdBy: string | null): Promise<string> {
    const [row] = await this.knex('chats').insert({ name, created_by: createdBy }).returning('id');
    return (row as { id: string }).id;
  }

  async chatExists(chatId: string): Promise<boolean> {
    return (await this.knex('chats').where({ id: chatId }).first('id')) !== undefined;
  }

  async isMember(chatId: string, userId: string): Promise<boolean> {
    const row = await this.knex('members').where({ chat_id: chatId, user_id: userId }).first('id');
    return row !== undefined;
  }

  /**
   * The caller's member id in the chat: created on first join (a `joined` event), display name
   * updated on the next (`renamed`); undefined when there is no such chat. The event is numbered
   * and stored in the same statement, under the chat row lock (see migration 004).
   */
  async upsertMember(chatId: string, userId: string, name: string): Promise<Joined | undefined> {
    return this.joinWithEvent(
      `INSERT INTO members (chat_id, user_id, name) SELECT chat.id, ?::uuid, ? FROM chat
       ON CONFLICT (chat_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET name = EXCLUDED.name
       RETURNING id, name, (xmax = 0) AS inserted`,
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
}
