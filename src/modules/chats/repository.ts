import type { Knex } from '../../infra/db.js';

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

  /** The caller's member id in the chat: created on first join, display name updated on the next. */
  async upsertMember(chatId: string, userId: string, name: string): Promise<string> {
    const { rows } = await this.knex.raw<{ rows: { id: string }[] }>(
      `INSERT INTO members (chat_id, user_id, name) VALUES (?, ?, ?)
       ON CONFLICT (chat_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET name = EXCLUDED.name
       RETURNING id`,
      [chatId, userId, name],
    );
    return rows[0]!.id;
  }

  async insertAnonymousMember(chatId: string, name: string): Promise<string> {
    const [row] = await this.knex('members').insert({ chat_id: chatId, name }).returning('id');
    return (row as { id: string }).id;
  }
}
