import { createHash } from 'node:crypto';
import { chatNotFound, idempotencyKeyReused, messageNotFound, userNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { CacheStatus } from '../cache/read-through.js';
import type { ChatsService } from '../chats/index.js';
import type { EventPublisher, StoredEvent } from '../events/model.js';
import type { Caller } from '../types.js';
import { decodeCursor } from './cursor.js';
import { presentHistoryPage, presentPositionedPage } from './present.js';
import type { HistoryRow, IdempotencyKey, MessagesRepository, SentMessage } from './repository.js';

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
 * travel as the JSON text clients get (a remembered one as its UTF-8 bytes): a cached page is sent
 * as stored, never parsed and serialized again.
 */
export interface HistoryCache {
  /**
   * The page of `limit` after position `afterSeq` (undefined: the first page; NEWEST_PAGE: the
   * newest page), as remembered while it holds every message acknowledged so far, else from
   * `source`.
   */
  read(
    chatId: string,
    limit: number,
    afterSeq: string | undefined,
    source: HistorySource,
  ): Promise<{ body: string | Buffer; cache: CacheStatus }>;
  /** Makes every remembered page of the chat stale, on every instance at once. */
  invalidate(chatId: string): Promise<void>;
}

/** Where a page read from any position starts: the newest, right before a cursor, or around a message. */
export type HistoryPosition = { anchor: 'newest' } | { before: string } | { around: string };

/** The newest page's position for the history cache (positions are otherwise digits). */
export const NEWEST_PAGE = 'newest';

export class MessagesService {
  constructor(
    private readonly repository: MessagesRepository,
    private readonly chats: ChatsService,
    private readonly history?: HistoryCache,
    private readonly events?: EventPublisher,
  ) {}

  /**
   * Stored, and cached pages of the chat stale, before the caller hears of it. With an
   * `idempotencyKey`, a retry of the same request by the same caller within 24 h gets the first
   * message's id and stores nothing (also when the first attempt's answer was lost or an error after
   * its insert completed); the same key for another request → 422 `idempotency-key-reused`.
   */
  async send(
    caller: Caller,
    chatId: string,
    memberId: string,
    text: string,
    idempotencyKey?: string,
  ): Promise<string> {
    const key =
      idempotencyKey === undefined ? undefined : keyOf(caller, idempotencyKey, chatId, memberId, text);
    // The insert itself requires a member of this chat owned by the caller, which implies the caller
    // may see the chat: only a refused post pays for telling chat-not-found from user-not-found.
    let sent: { messageId: string; event?: StoredEvent } | undefined;
    if (isUuid(chatId) && isUuid(memberId)) {
      sent = key
        ? await this.sendOnce(caller, chatId, memberId, text, key)
        : await this.repository.insertMessage(chatId, memberId, caller.userId, text);
    } else if (key) {
      sent = await this.replay(key);
    }
    if (!sent) {
      await this.chats.requireVisible(caller, chatId);
      throw userNotFound();
    }
    // A replayed answer tells no stream anything new: its event went out with the first attempt.
    if (sent.event) this.events?.published(sent.event);
    await this.history?.invalidate(chatId);
    return sent.messageId;
  }

  private async sendOnce(
    caller: Caller,
    chatId: string,
    memberId: string,
    text: string,
    key: IdempotencyKey,
  ): Promise<SentMessage | { messageId: string } | undefined> {
    // Twice at most: a key found expired is dropped, and the insert tried again.
    for (let attempt = 0; attempt < 2; attempt++) {
      const inserted = await this.repository.insertMessageOnce(chatId, memberId, caller.userId, text, key);
      if (!inserted.taken) return inserted.sent ?? (await this.replay(key));
      const replayed = await this.replay(key);
      if (replayed) return replayed;
    }
    return undefined;
  }

  /** The message a key recorded for this same request; 422 when it recorded another request. */
  private async replay(key: IdempotencyKey): Promise<{ messageId: string } | undefined> {
    const recorded = await this.repository.recordedSend(key);
    if (recorded && recorded.requestHash !== key.requestHash) throw idempotencyKeyReused();
    return recorded && { messageId: recorded.messageId };
  }

  /**
   * A page for a reader, as JSON text. The cursor is checked first (400 whoever asks); a page is
   * only ever served once membership is confirmed. Without a cache the page's statement checks it
   * (one query). With a cache, the membership check and the cache read run side by side; on a miss
   * the database is asked for the page only once membership is confirmed, so a stranger (or a
   * made-up chat id) never makes the service read or keep a page.
   */
  async readHistory(
    caller: Caller,
    chatId: string,
    limit: number,
    from: string | undefined,
  ): Promise<{ body: string | Buffer; cache?: CacheStatus }> {
    // Canonical (no leading zeros): one position, one cache key.
    const afterSeq = from === undefined ? undefined : BigInt(decodeCursor(from)).toString();
    if (!this.history || !isUuid(chatId)) {
      return { body: (await this.loadPage(caller, chatId, afterSeq, limit)).json };
    }
    const visible = this.chats.requireVisible(caller, chatId);
    const source: HistorySource = {
      load: async () => {
        await visible;
        return this.loadPage(caller, chatId, afterSeq, limit);
      },
      hasNewer: (seq) => this.repository.hasMessageAfter(chatId, seq),
    };
    const [, page] = await Promise.all([visible, this.history.read(chatId, limit, afterSeq, source)]);
    return page;
  }

  private async loadPage(
    caller: Caller,
    chatId: string,
    afterSeq: string | undefined,
    limit: number,
  ): Promise<LoadedPage> {
    const start = afterSeq ?? '0';
    const rows = await visibleRows(caller, chatId, (viewer) =>
      this.repository.page(viewer, chatId, start, limit + 1),
    );
    const page = presentHistoryPage(rows, limit);
    const loaded: LoadedPage = { json: JSON.stringify(page) };
    if (rows.length > limit) loaded.nextAfter = rows[limit - 1]!.seq;
    else loaded.growsAfter = rows.at(-1)?.seq ?? start;
    return loaded;
  }

  /**
   * A page from any position, oldest first, with `prev` / `next` exactly when older / newer messages
   * exist. Each is one or two keyset range scans on (chat_id, seq): the same cost at any depth. The
   * newest page (the one every client opens) is cached like the first page, and as the chat's last
   * page it is served from the cache only while no message follows it.
   */
  async readHistoryAt(
    caller: Caller,
    chatId: string,
    limit: number,
    position: HistoryPosition,
  ): Promise<{ body: string | Buffer; cache?: CacheStatus }> {
    if ('before' in position) {
      const beforeSeq = decodeCursor(position.before);
      const rows = (
        await visibleRows(caller, chatId, (viewer) =>
          this.repository.older(viewer, chatId, beforeSeq, limit + 1),
        )
      ).reverse();
      const older = rows.length > limit;
      const shown = older ? rows.slice(1) : rows;
      const emptyFrom = beforeSeq === '0' ? '0' : String(BigInt(beforeSeq) - 1n);
      const newer = await this.repository.hasMessageAfter(chatId, emptyFrom);
      return { body: JSON.stringify(presentPositionedPage(shown, older, newer, emptyFrom)) };
    }
    if ('around' in position) {
      await this.chats.requireVisible(caller, chatId);
      const target = isUuid(position.around)
        ? await this.repository.positionOf(chatId, position.around)
        : undefined;
      if (target === undefined) throw messageNotFound();
      const olderCount = Math.floor((limit - 1) / 2);
      const newerCount = limit - 1 - olderCount;
      const [olderRows, fromTarget] = await Promise.all([
        visibleRows(caller, chatId, (viewer) =>
          this.repository.older(viewer, chatId, target, olderCount + 1),
        ),
        visibleRows(caller, chatId, (viewer) =>
          this.repository.page(viewer, chatId, String(BigInt(target) - 1n), newerCount + 2),
        ),
      ]);
      const older = olderRows.length > olderCount;
      const newer = fromTarget.length > newerCount + 1;
      const shown = [...olderRows.slice(0, olderCount).reverse(), ...fromTarget.slice(0, newerCount + 1)];
      return { body: JSON.stringify(presentPositionedPage(shown, older, newer)) };
    }
    if (!this.history || !isUuid(chatId)) {
      return { body: (await this.loadNewest(caller, chatId, limit)).json };
    }
    const visible = this.chats.requireVisible(caller, chatId);
    const source: HistorySource = {
      load: async () => {
        await visible;
        return this.loadNewest(caller, chatId, limit);
      },
      hasNewer: (seq) => this.repository.hasMessageAfter(chatId, seq),
    };
    const [, page] = await Promise.all([visible, this.history.read(chatId, limit, NEWEST_PAGE, source)]);
    return page;
  }

  private async loadNewest(caller: Caller, chatId: string, limit: number): Promise<LoadedPage> {
    const rows = (
      await visibleRows(caller, chatId, (viewer) => this.repository.older(viewer, chatId, null, limit + 1))
    ).reverse();
    const older = rows.length > limit;
    const shown = older ? rows.slice(1) : rows;
    return {
      json: JSON.stringify(presentPositionedPage(shown, older, false)),
      growsAfter: shown.at(-1)?.seq ?? '0',
    };
  }
}

/**
 * Rows read by a statement that checks the membership rule itself, for the caller: a chat they may
 * not see (or a made-up id, never sent to the database) is 404 `chat-not-found`, as requireVisible says.
 */
async function visibleRows(
  caller: Caller,
  chatId: string,
  read: (viewer: string | null) => Promise<HistoryRow[] | undefined>,
): Promise<HistoryRow[]> {
  const rows = isUuid(chatId) ? await read(caller.userId) : undefined;
  if (!rows) throw chatNotFound();
  return rows;
}

/** A key is the caller's own; the hash tells the same request (chat, member, text) from another. */
function keyOf(caller: Caller, key: string, chatId: string, memberId: string, text: string): IdempotencyKey {
  const requestHash = createHash('sha256')
    .update(JSON.stringify([chatId, memberId, text]))
    .digest('base64url');
  return { owner: caller.userId ?? '', key, requestHash };
}
