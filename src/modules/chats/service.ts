import { chatNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { Caller } from '../types.js';
import type { EventPublisher } from '../events/model.js';
import type { ChatsRepository, Joined } from './repository.js';

const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Remembers who may see which chat (the cache module may provide one). Only a yes is remembered, and
 * it stays true: nobody leaves a chat and chats are not deleted.
 */
export interface MembershipCache {
  isKnown(chatId: string, userId: string | null): Promise<boolean>;
  remember(chatId: string, userId: string | null): Promise<void>;
}

export interface ChatsOptions {
  memberships?: MembershipCache;
  /** After a join: display names show in history, so cached pages of the chat go stale. */
  joined?: (chatId: string) => Promise<void>;
  /** Hears of every committed member event (joined, renamed; left once leaving exists). */
  events?: EventPublisher;
}

export class ChatsService {
  constructor(
    private readonly repository: ChatsRepository,
    private readonly options: ChatsOptions = {},
  ) {}

  createChat(caller: Caller, chatName: string): Promise<string> {
    return this.repository.insertChat(chatName, caller.userId);
  }

  /**
   * Knowing a chat's id is what lets a caller join it. Joining again keeps the member id and
   * renames it; anonymous callers get a new member each time.
   */
  async join(caller: Caller, chatId: string, userName: string): Promise<string> {
    if (!isUuid(chatId)) throw chatNotFound();
    let joined: Joined | undefined;
    try {
      joined =
        caller.userId === null
          ? await this.repository.insertAnonymousMember(chatId, userName)
          : await this.repository.upsertMember(chatId, caller.userId, userName);
    } catch (error) {
      if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) throw chatNotFound();
      throw error;
    }
    if (!joined) throw chatNotFound();
    const { memberId, event } = joined;
    this.options.events?.published(event);
    await this.options.joined?.(chatId);
    await this.options.memberships?.remember(chatId, caller.userId);
    return memberId;
  }

  /**
   * 404 `chat-not-found` unless the caller may see the chat: members may; anonymous callers
   * (authentication off) may see every chat. A chat you are not in looks exactly like no chat.
   */
  async requireVisible(caller: Caller, chatId: string): Promise<void> {
    if (!isUuid(chatId)) throw chatNotFound();
    const memberships = this.options.memberships;
    if (await memberships?.isKnown(chatId, caller.userId)) return;
    const visible =
      caller.userId === null
        ? await this.repository.chatExists(chatId)
        : await this.repository.isMember(chatId, caller.userId);
    if (!visible) throw chatNotFound();
    await memberships?.remember(chatId, caller.userId);
  }
}
