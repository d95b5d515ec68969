import { userNotFound } from '../../http/errors.js';
import { isUuid } from '../../http/validate.js';
import type { ChatsService } from '../chats/index.js';
import type { Caller } from '../types.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { MessagesRepository } from './repository.js';

export interface HistoryMessage {
  text: string;
  message_id: string;
  user_id: string;
  user_name: string;
  created_at: Date;
}

export interface HistoryPage {
  messages: HistoryMessage[];
  next?: { iterator: string };
}

export class MessagesService {
  constructor(
    private readonly repository: MessagesRepository,
    private readonly chats: ChatsService,
  ) {}

  async send(caller: Caller, chatId: string, memberId: string, text: string): Promise<string> {
    await this.chats.requireVisible(caller, chatId);
    const messageId = isUuid(memberId)
      ? await this.repository.insertMessage(chatId, memberId, caller.userId, text)
      : undefined;
    if (!messageId) throw userNotFound();
    return messageId;
  }

  /** Checks that the caller may read the chat (also before a cached page is served). */
  requireReader(caller: Caller, chatId: string): Promise<void> {
    return this.chats.requireVisible(caller, chatId);
  }

  /** Oldest first; `next` is there exactly when more messages follow now. */
  async historyPage(chatId: string, limit: number, from: string | undefined): Promise<HistoryPage> {
    const afterSeq = from === undefined ? '0' : decodeCursor(from);
    const rows = await this.repository.page(chatId, afterSeq, limit + 1);
    const more = rows.length > limit;
    const shown = more ? rows.slice(0, limit) : rows;
    const page: HistoryPage = {
      messages: shown.map(({ text, message_id, user_id, user_name, created_at }) => ({
        text,
        message_id,
        user_id,
        user_name,
        created_at,
      })),
    };
    if (more) page.next = { iterator: encodeCursor(shown[shown.length - 1]!.seq) };
    return page;
  }
}
