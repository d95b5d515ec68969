import { userNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { CacheStatus } from '../cache/read-through.js';
import type { ChatsService } from '../chats/index.js';
import type { Caller } from '../types.js';
import { decodeCursor } from './cursor.js';
import { presentHistoryPage } from './present.js';
import type { MessagesRepository } from './repository.js';

/** A page as read from the database, with what a cache needs to know about it. */
export interface LoadedPage {
  /** The page's JSON text, as clients get it. */
  json: string;
  /** When more messages follow: the position the next page starts after. */
  nextAfter?: string;
  /** When this is the chat's last page: the position after which a new message would change it. */
  growsAfter?: string;
}

/** Where a cache gets a page it does not hold, and asks whether a held page is still complete. */
export interface HistorySource {
  load(): Promise<LoadedPage>;
  /** Whether the chat has a message after `afterSeq` (asked of the database). */
  hasNewer(afterSeq: string): Promise<boolean>;
}

/**
 * Where history pages are remembered between requests (the cache module may provide one). Pages
 * travel as the JSON text clients get: a cached page is sent as stored, never parsed and
 * serialized again.
 */
export interface HistoryCache {
  /**
   * The page of `limit` after position `afterSeq` (undefined: the first page), as remembered while
   * it holds every message acknowledged so far, else from `source`.
   */
  read(
    chatId: string,
    limit: number,
    afterSeq: string | undefined,
    source: HistorySource,
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
   * A page for a reader, as JSON text. The cursor is checked first (400 whoever asks); a page is
   * only ever served once membership is confirmed. With a cache, the membership check and the cache
   * read run side by side; on a miss the database is asked for the page only once membership is
   * confirmed, so a stranger (or a made-up chat id) never makes the service read or keep a page.
   */
  async readHistory(
    caller: Caller,
    chatId: string,
    limit: number,
    from: string | undefined,
  ): Promise<{ json: string; cache?: CacheStatus }> {
    // Canonical (no leading zeros): one position, one cache key.
    const afterSeq = from === undefined ? undefined : BigInt(decodeCursor(from)).toString();
    if (!this.history || !isUuid(chatId)) {
      await this.chats.requireVisible(caller, chatId);
      return { json: (await this.loadPage(chatId, afterSeq, limit)).json };
    }
    const visible = this.chats.requireVisible(caller, chatId);
    const source: HistorySource = {
      load: async () => {
        await visible;
        return this.loadPage(chatId, afterSeq, limit);
      },
      hasNewer: (seq) => this.repository.hasMessageAfter(chatId, seq),
    };
    const [, page] = await Promise.all([visible, this.history.read(chatId, limit, afterSeq, source)]);
    return page;
  }

  private async loadPage(chatId: string, afterSeq: string | undefined, limit: number): Promise<LoadedPage> {
    const start = afterSeq ?? '0';
    const rows = await this.repository.page(chatId, start, limit + 1);
    const page = presentHistoryPage(rows, limit);
    const loaded: LoadedPage = { json: JSON.stringify(page) };
    if (rows.length > limit) loaded.nextAfter = rows[limit - 1]!.seq;
    else loaded.growsAfter = rows.at(-1)?.seq ?? start;
    return loaded;
  }
}
