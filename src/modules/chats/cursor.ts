import { badCursor } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { ChatListPosition } from './repository.js';

/**
 * Chat list and member list cursors: base64url of a versioned position (the last item shown).
 * Anything that does not decode to one is 400 `bad-cursor`.
 */
const CHATS = 'c1:';
const MEMBERS = 'u1:';
// last_activity_at as the database spells it for the cursor, in UTC to the microsecond.
const ACTIVITY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

const encode = (text: string) => Buffer.from(text).toString('base64url');

function decode(cursor: string, prefix: string): string {
  const decoded = /^[\w-]{1,128}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '';
  if (!decoded.startsWith(prefix)) throw badCursor();
  return decoded.slice(prefix.length);
}

export function encodeChatsCursor(position: ChatListPosition): string {
  return encode(`${CHATS}${position.activityKey}|${position.chatId}`);
}

export function decodeChatsCursor(cursor: string): ChatListPosition {
  const [activityKey = '', chatId = '', ...rest] = decode(cursor, CHATS).split('|');
  if (
    rest.length ||
    !ACTIVITY.test(activityKey) ||
    Number.isNaN(Date.parse(activityKey)) ||
    !isUuid(chatId)
  ) {
    throw badCursor();
  }
  return { activityKey, chatId };
}

export function encodeMembersCursor(memberId: string): string {
  return encode(MEMBERS + memberId);
}

export function decodeMembersCursor(cursor: string): string {
  const memberId = decode(cursor, MEMBERS);
  if (!isUuid(memberId)) throw badCursor();
  return memberId;
}
