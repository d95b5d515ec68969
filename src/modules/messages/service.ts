import { userNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { ChatsService } from '../chats/index.js';
import type { Caller } from '../types.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { HistoryRow, MessagesRepository } from './repository.js';

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

/** Where the page came from: the cache, the database, or the cache because the database is down. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE';

/**
 * Where history pages are remembered between requests (the cache module may provide one). Pages
 * travel as their JSON text: a cached page is sent as stored, never parsed and serialized again.
 */
export interface HistoryCache {
  /** The page's JSON as remembered while it is current, else from `load` (the database). */
  read(
    chatId: string,
    limit: number,
    from: string | undefined,
    load: () => Promise<string>,
  ): Promise<{ json: string; cache: CacheStatus }>;
  /** Makes every remembered page of the chat stale, on every instance at once. */
  invalidate(chatId: string): Promise<void>;
}

export class MessagesService {
  constructor(
    private readonly repository: MessagesRepository,
    private readonly chats: ChatsService,
    private readonly history?: HistoryCache,
  ) {}

  /** Stored, and cached pages of the chat stale, before the caller hears of it. */
  async send(caller: Caller, chatId: string, memberId: string, text: string): Promise<string> {
    // The insert itself requires a member of this chat owned by the caller, which implies the caller
    // may see the chat: only a refused post pays for telling chat-not-found from user-not-found.
    const messageId =
      isUuid(chatId) && isUuid(memberId)
        ? await this.repository.insertMessage(chatId, memberId, caller.userId, text)
        : undefined;
    if (!messageId) {
      await this.chats.requireVisible(caller, chatId);
      throw userNotFound();
    }
    await this.history?.invalidate(chatId);
    return messageId;
  }

  /**
   * A page for a reader. The cursor is checked first (400 whoever asks); a page is only ever served
   * once membership is confirmed. With a cache, the membership check and the cache read run side by
   * side; without one the database is asked for the page only after membership.
   */
  async readHistory(
    caller: Caller,
    chatId: string,
    limit: number,
    from: string | undefined,
  ): Promise<{ json: string; cache?: CacheStatus }> {
    const afterSeq = from === undefined ? '0' : decodeCursor(from);
    const load = async () => JSON.stringify(await this.historyPage(chatId, limit, afterSeq));
    if (!this.history || !isUuid(chatId)) {
      await this.chats.requireVisible(caller, chatId);
      return { json: await load() };
    }
    const [, page] = await Promise.all([
      this.chats.requireVisible(caller, chatId),
      this.history.read(chatId, limit, from, load),
    ]);
    return page;
  }

  /** Oldest first; `next` is there exactly when more messages follow now. */
  private async historyPage(chatId: string, limit: number, afterSeq: string): Promise<HistoryPage> {
    return historyPageOf(await this.repository.page(chatId, afterSeq, limit + 1), limit);
  }
}

/** The page shown for up to `limit + 1` rows read after a position: the extra row only says "more". */
export function historyPageOf(rows: HistoryRow[], limit: number): HistoryPage {
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
