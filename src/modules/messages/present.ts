import { keysetPage } from '../../paging.js';
import { encodeCursor } from './cursor.js';
import type { HistoryRow } from './repository.js';

/** A history message as clients read it (swagger.yml, HistoryMessage). */
export interface MessageJson {
  text: string;
  message_id: string;
  user_id: string;
  user_name: string;
  created_at: string;
}

export interface HistoryPageJson {
  messages: MessageJson[];
  next?: { iterator: string };
}

/** A message as history shows it; its position (seq) is not shown. */
export function presentMessage(row: Omit<HistoryRow, 'seq'>): MessageJson {
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
  const { shown, next } = keysetPage(rows, limit, (last) => encodeCursor(last.seq));
  return next ? { messages: shown.map(presentMessage), next } : { messages: shown.map(presentMessage) };
}

/** A page read from any position (newest, before, around): `prev` / `next` say whether older / newer exist. */
export interface PositionedPageJson {
  messages: MessageJson[];
  prev?: { iterator: string };
  next?: { iterator: string };
}

/**
 * `rows` oldest first. `prev` (pass as `before`) starts right before the first shown; `next` (pass
 * as `from`) right after the last shown, or at `emptyFrom` when nothing is shown.
 */
export function presentPositionedPage(
  rows: HistoryRow[],
  older: boolean,
  newer: boolean,
  emptyFrom = '0',
): PositionedPageJson {
  const page: PositionedPageJson = { messages: rows.map(presentMessage) };
  if (older && rows[0]) page.prev = { iterator: encodeCursor(rows[0].seq) };
  if (newer) page.next = { iterator: encodeCursor(rows.at(-1)?.seq ?? emptyFrom) };
  return page;
}
