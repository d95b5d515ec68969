import { authFailed, chatNotFound, messageNotFound, userNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { CacheStatus } from '../cache/read-through.js';
import type { Caller } from '../types.js';
import { decodeChatsCursor, decodeMembersCursor } from './cursor.js';
import type { EventPublisher } from '../events/model.js';
import { presentMembers, presentMyChats } from './present.js';
import type { ChatsRepository, Joined } from './repository.js';

const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Remembers who may see which chat (the cache module may provide one). Only a yes is remembered;
 * `forget` makes a remembered yes of that user for that chat void on every instance at once.
 */
export interface MembershipCache {
  /** True when a current yes is remembered, else the answer of `load` (the database). */
  check(chatId: string, userId: string | null, load: () => Promise<boolean>): Promise<boolean>;
  forget(chatId: string, userId: string | null): Promise<void>;
}

/** A first chat-list page as read from the database, with what a cache needs to know about it. */
export interface LoadedChatList {
  /** The page's JSON text, as clients get it. */
  json: string;
  /** Every chat the user is in (the page shows the most active of them). */
  chatIds: string[];
}

/**
 * Remembers users' first chat-list pages (the cache module may provide one), as the JSON text
 * clients get. Whatever changes a chat for all its members (a message, a member's name) reaches
 * the cache through the history cache's invalidation; the user's own changes through `userChanged`.
 */
export interface ChatListCache {
  /**
   * The user's first page of `limit` chats, as remembered while nothing it shows changed, else
   * from `load`.
   */
  read(
    userId: string,
    limit: number,
    load: () => Promise<LoadedChatList>,
  ): Promise<{ body: string | Buffer; cache: CacheStatus }>;
  /** The user joined, left, renamed or moved a read mark: their lists are stale on every instance. */
  userChanged(userId: string): Promise<void>;
}

export interface ChatsOptions {
  memberships?: MembershipCache;
  chatLists?: ChatListCache;
  /** After a join: display names show in history, so cached pages of the chat go stale. */
  joined?: (chatId: string) => Promise<void>;
  /** Hears of every committed member and read event (joined, renamed, left; read marks). */
  events?: EventPublisher;
  /** The ones of these accounts with an open event stream anywhere (the members list's `online`). */
  online?: (userIds: string[]) => Promise<Set<string>>;
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
   * renames it (also after leaving); anonymous callers get a new member each time. The membership
   * is not put in the cache here: the first read does it, under the generation it reads first.
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
    if (caller.userId !== null) await this.options.chatLists?.userChanged(caller.userId);
    return memberId;
  }

  /**
   * 404 `chat-not-found` unless the caller may see the chat: current members may; anonymous callers
   * (authentication off) may see every chat. A chat you are not in (or left) looks exactly like no
   * chat.
   */
  async requireVisible(caller: Caller, chatId: string): Promise<void> {
    if (!isUuid(chatId)) throw chatNotFound();
    const load = () =>
      caller.userId === null
        ? this.repository.chatExists(chatId)
        : this.repository.isMember(chatId, caller.userId);
    const memberships = this.options.memberships;
    const visible = memberships ? await memberships.check(chatId, caller.userId, load) : await load();
    if (!visible) throw chatNotFound();
  }

  /**
   * The caller's chats, most recent activity first, as swagger.yml's MyChatsPage in JSON text. The
   * first page is remembered when there is a cache.
   */
  async myChats(
    caller: Caller,
    limit: number,
    from: string | undefined,
  ): Promise<{ body: string | Buffer; cache?: CacheStatus }> {
    const userId = requireUser(caller);
    const after = from === undefined ? undefined : decodeChatsCursor(from);
    const page = async () =>
      JSON.stringify(presentMyChats(await this.repository.myChats(userId, after, limit + 1), limit));
    const lists = this.options.chatLists;
    if (after !== undefined || !lists) return { body: await page() };
    return lists.read(userId, limit, async () => {
      const [json, chatIds] = await Promise.all([page(), this.repository.chatIdsOf(userId)]);
      return { json, chatIds };
    });
  }

  /** The chat's current members, as swagger.yml's MembersPage. */
  async members(caller: Caller, chatId: string, limit: number, from: string | undefined) {
    const after = from === undefined ? undefined : decodeMembersCursor(from);
    await this.requireVisible(caller, chatId);
    const members = await this.repository.members(chatId, after, limit + 1);
    const accounts = members.flatMap((member) => (member.userId === null ? [] : [member.userId]));
    const online = (await this.options.online?.(accounts)) ?? new Set<string>();
    return presentMembers(members, limit, online);
  }

  /**
   * Ends the caller's own membership; the chat then answers them as a non-member everywhere at once
   * (cached memberships included). Someone else's membership, or none → 404 `user-not-found`.
   */
  async leave(caller: Caller, chatId: string, memberId: string): Promise<void> {
    await this.requireVisible(caller, chatId);
    const left = isUuid(memberId) ? await this.repository.leave(chatId, memberId, caller.userId) : undefined;
    if (!left) throw userNotFound();
    if (caller.userId !== null) {
      await this.options.memberships?.forget(chatId, caller.userId);
      await this.options.chatLists?.userChanged(caller.userId);
    }
    this.options.events?.published(left);
  }

  /** Moves the caller's read position forward to the message; returns their unread count. */
  async markRead(caller: Caller, chatId: string, messageId: string): Promise<number> {
    const userId = requireUser(caller);
    await this.requireVisible(caller, chatId);
    if (!isUuid(messageId)) throw messageNotFound();
    const marked = await this.repository.markRead(chatId, userId, messageId);
    if (marked === undefined) throw chatNotFound();
    if (marked === null) throw messageNotFound();
    if (marked.event) {
      this.options.events?.published(marked.event);
      await this.options.chatLists?.userChanged(userId);
    }
    return marked.unread;
  }
}

/** What belongs to a person (their chat list, their read marks) needs a session, whatever AUTH_DISABLED says. */
function requireUser(caller: Caller): string {
  if (caller.userId === null) throw authFailed();
  return caller.userId;
}
