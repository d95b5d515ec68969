import { encodeCursor } from './cursor.js';
import type { HistoryRow } from './repository.js';

/** A history message as clients read it (swagger.yml, HistoryMessage). */
export interface MessageJson {
  text: string;
  message_id: string;
  user_id: string;
  user_name: string;
  created_at: Date;
}

export interface HistoryPageJson {
  messages: MessageJson[];
  next?: { iterator: string };
}

export function presentMessage(row: HistoryRow): MessageJson {
  return {
    text: row.text,
    message_id: row.messageId,
    user_id: row.memberId,
    user_name: row.memberName,
    created_at: row.createdAt,
  };
}

/** The page for up to `limit + 1` rows read after a position: the extra row only says "more follow". */
export function presentHistoryPage(rows: HistoryRow[], limit: number): HistoryPageJson {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const page: HistoryPageJson = { messages: shown.map(presentMessage) };
  if (more) page.next = { iterator: encodeCursor(shown[shown.length - 1]!.seq) };
  return page;
}
