import type { CacheStore } from '../../infra/cache.js';
import type { MembershipCache } from '../chats/index.js';
import type { Timing } from './timing.js';

/** `*`: an anonymous caller (AUTH_DISABLED), who may see every chat that exists. */
const memberKey = (chatId: string, userId: string | null) => `member:${chatId}:${userId ?? '*'}`;

/** Who may see which chat. Only a yes is stored, and it never turns into a no (nobody leaves). */
export function membershipCache(store: CacheStore, timing: Timing): MembershipCache {
  return {
    async isKnown(chatId, userId) {
      try {
        const [known] = await store.read([memberKey(chatId, userId)]);
        return known === true;
      } catch {
        return false;
      }
    },
    async remember(chatId, userId) {
      await store.write(memberKey(chatId, userId), true, timing.keepMs).catch(() => undefined);
    },
  };
}
