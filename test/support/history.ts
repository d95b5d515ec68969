import assert from 'node:assert/strict';
import type { Api } from './app.js';
import { memberOfNewChat, send, unique, type User } from './fixtures.js';

/** A user and their membership in a chat. */
export interface Member {
  user: User;
  chatId: string;
  memberId: string;
  displayName: string;
}

export interface HistoryMessage {
  text: string;
  message_id: string;
  user_id: string;
  user_name: string;
  created_at: string;
}

export interface HistoryPage {
  messages: HistoryMessage[];
  next?: { iterator: string };
}

/** Reads a chat's history as one member: pages, walks and the texts seen. `app` is asked at each call. */
export function historyReader(app: () => { api: Api }) {
  /** A new user in a new chat of their own: every test gets its own history. */
  async function newMember(): Promise<Member> {
    const displayName = unique('Name');
    return { ...(await memberOfNewChat(app().api, displayName)), displayName };
  }

  async function sendAll(m: Member, texts: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const text of texts) ids.push(await send(app().api, m.user, m.chatId, m.memberId, text));
    return ids;
  }

  async function page(m: Member, query: string): Promise<HistoryPage> {
    const res = await app().api.get(`/v1/chats/${m.chatId}/messages?${query}`).set(m.user.auth).expect(200);
    return res.body as HistoryPage;
  }

  /** Follows `next` from `from` (the first page when undefined) to the end; each page with the `from` that gave it. */
  async function walkFrom(
    m: Member,
    limit: number,
    from: string | undefined,
  ): Promise<(HistoryPage & { from: string | undefined })[]> {
    const pages: (HistoryPage & { from: string | undefined })[] = [];
    for (let cursor = from; ;) {
      const query = cursor === undefined ? '' : `&from=${encodeURIComponent(cursor)}`;
      const current = { ...(await page(m, `limit=${limit}${query}`)), from: cursor };
      pages.push(current);
      if (!current.next) return pages;
      cursor = current.next.iterator;
      assert.ok(pages.length < 1000, 'pagination does not end');
    }
  }

  /** Follows `next` from the first page to the end; returns every page. */
  const walk = (m: Member, limit: number): Promise<HistoryPage[]> => walkFrom(m, limit, undefined);

  return { newMember, sendAll, page, walk, walkFrom };
}

export const texts = (p: HistoryPage) => p.messages.map((message) => message.text);
export const numbered = (count: number, prefix = 'm') =>
  Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
