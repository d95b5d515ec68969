import { userNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { CacheStatus } from '../cache/read-through.js';
import type { ChatsService } from '../chats/index.js';
import type { EventPublisher } from '../events/model.js';
import type { Caller } from '../types.js';
import { decodeCursor } from './cursor.js';
import { presentHistoryPage } from './present.js';
import type { MessagesRepository } from './repository.js';

/**
 * Where history pages are remembered between requests (the cache module may provide one). Pages
 * travel as the JSON text clients get: a cached page is sent as stored, never parsed and
 * serialized again.
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
    private readonly events?: EventPublisher,
  ) {}

  /** Stored, and cached pages of the chat stale, before the caller hears of it. */
  async send(caller: Caller, chatId: string, memberId: string, text: string): Promise<string> {
    // The insert itself requires a member of this chat owned by the caller, which implies the caller
    // may see the chat: only a refused post pays for telling chat-not-found from user-not-found.
    const inserted =
      isUuid(chatId) && isUuid(memberId)
        ? await this.repository.insertMessage(chatId, memberId, caller.userId, text)
        : undefined;
    if (!inserted) {
      await this.chats.requireVisible(caller, chatId);
      throw userNotFound();
    }
    this.events?.published(inserted.event);
    await this.history?.invalidate(chatId);
    return inserted.messageId;
  }

  /**
   * A page for a reader, as JSON text. The cursor is checked first (400 whoever asks); a page is
   * only ever served once membership is confirmed. With a cache, the membership check and the cache
   * read run side by side; without one the database is asked for the page only after membership.
   */
  async readHistory(
    caller: Caller,
    chatId: string,
    limit: number,
    from: string | undefined,
  ): Promise<{ json: string; cache?: CacheStatus }> {
    const afterSeq = from === undefined ? '0' : decodeCursor(from);
    const load = async () =>
      JSON.stringify(presentHistoryPage(await this.repository.page(chatId, afterSeq, limit + 1), limit));
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
}
