import { encodeChatsCursor, encodeMembersCursor } from './cursor.js';
import type { ChatMember, LastMessage, MyChat } from './repository.js';

/** swagger.yml, HistoryMessage. */
interface MessageJson {
  text: string;
  message_id: string;
  user_id: string;
  user_name: string;
  created_at: Date;
}

/** swagger.yml, MyChat. */
interface MyChatJson {
  chat_id: string;
  chat_name: string;
  user_id: string;
  user_name: string;
  unread: number;
  last_message: MessageJson | null;
  last_activity_at: Date;
}

/** swagger.yml, ChatMember. */
interface ChatMemberJson {
  user_id: string;
  user_name: string;
  read_up_to: string | null;
  online: boolean;
}

const presentMessage = (message: LastMessage): MessageJson => ({
  text: message.text,
  message_id: message.messageId,
  user_id: message.memberId,
  user_name: message.memberName,
  created_at: message.createdAt,
});

/** A page for up to `limit + 1` chats: the extra one only says "more follow". */
export function presentMyChats(
  chats: MyChat[],
  limit: number,
): { chats: MyChatJson[]; next?: { iterator: string } } {
  const shown = chats.slice(0, limit);
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
  const last = shown.at(-1);
  if (chats.length > limit && last) page.next = { iterator: encodeChatsCursor(last) };
  return page;
}

/** `online`: the member's account has an open event stream (anonymous members never do). */
export function presentMembers(
  members: ChatMember[],
  limit: number,
  online: Set<string>,
): { users: ChatMemberJson[]; next?: { iterator: string } } {
  const shown = members.slice(0, limit);
  const page: { users: ChatMemberJson[]; next?: { iterator: string } } = {
    users: shown.map((member) => ({
      user_id: member.memberId,
      user_name: member.memberName,
      read_up_to: member.readUpTo,
      online: member.userId !== null && online.has(member.userId),
    })),
  };
  const last = shown.at(-1);
  if (members.length > limit && last) page.next = { iterator: encodeMembersCursor(last.memberId) };
  return page;
}
