import { keysetPage } from '../../paging.js';
import { presentMessage, type MessageJson } from '../messages/present.js';
import { encodeChatsCursor, encodeMembersCursor } from './cursor.js';
import type { ChatMember, MyChat } from './repository.js';

/** swagger.yml, MyChat. */
interface MyChatJson {
  chat_id: string;
  chat_name: string;
  user_id: string;
  user_name: string;
  unread: number;
  last_message: MessageJson | null;
  last_activity_at: string;
}

/** swagger.yml, ChatMember. */
interface ChatMemberJson {
  user_id: string;
  user_name: string;
  read_up_to: string | null;
  online: boolean;
}

/** A page for up to `limit + 1` chats: the extra one only says "more follow". */
export function presentMyChats(
  chats: MyChat[],
  limit: number,
): { chats: MyChatJson[]; next?: { iterator: string } } {
  const { shown, next } = keysetPage(chats, limit, encodeChatsCursor);
  const page: { chats: MyChatJson[]; next?: { iterator: string } } = {
    chats: shown.map((chat) => ({
      chat_id: chat.chatId,
      chat_name: chat.chatName,
      user_id: chat.memberId,
      user_name: chat.memberName,
      unread: chat.unread,
      last_message: chat.lastMessage && presentMessage(chat.lastMessage),
      last_activity_at: chat.lastActivityAt,
    })),
  };
  if (next) page.next = next;
  return page;
}

/** `online`: the member's account has an open event stream (anonymous members never do). */
export function presentMembers(
  members: ChatMember[],
  limit: number,
  online: Set<string>,
): { users: ChatMemberJson[]; next?: { iterator: string } } {
  const { shown, next } = keysetPage(members, limit, (last) => encodeMembersCursor(last.memberId));
  const page: { users: ChatMemberJson[]; next?: { iterator: string } } = {
    users: shown.map((member) => ({
      user_id: member.memberId,
      user_name: member.memberName,
      read_up_to: member.readUpTo,
      online: member.userId !== null && online.has(member.userId),
    })),
  };
  if (next) page.next = next;
  return page;
}
