import { randomBytes } from 'node:crypto';
import type { CacheStore } from '../../infra/cache.js';
import { hashTag } from '../../infra/redis.js';
import type { MembershipCache } from '../chats/index.js';
import type { LocalLayer } from './local.js';
import type { Timing } from './timing.js';

/** A membership's generation until it is first forgotten (or after its marker expired). */
const FIRST_GENERATION = '0';

// `*`: an anonymous caller (AUTH_DISABLED), who may see every chat that exists. A membership and its
// generation are read together, in the chat's slot: on one node with the chat's pages, so the
// membership check and the page read of one request go out together.
const memberKey = (chatId: string, userId: string | null) => `member:${hashTag(chatId)}:${userId ?? '*'}`;
const generationKey = (chatId: string, userId: string | null) =>
  `member:generation:${hashTag(chatId)}:${userId ?? '*'}`;

/**
 * Who may see which chat. Only a yes is stored, under the generation of that (chat, user) read
 * before the database was asked; leaving gives the pair a new generation (one write every instance
 * sees at once), so a yes read before the leave never matches again, even when an instance writes
 * it back after the leave. Markers outlive entries, as for history pages.
 *
 * With `local` (Redis), a yes that is the current generation's is also kept in this process for a
 * few seconds; leaving forgets it there once the new generation is written, and tells every other
 * instance to.
 */
export function membershipCache(store: CacheStore, timing: Timing, local?: LocalLayer): MembershipCache {
  return {
    async check(chatId, userId, load) {
      const localKey = `${chatId}:${userId ?? '*'}`;
      if (local?.memberships.get(localKey)) return true;
      const since = local?.epoch ?? 0;
      const consultedAt = Date.now();
      let generation: string | undefined;
      try {
        const [stored, entry] = await store.read([generationKey(chatId, userId), memberKey(chatId, userId)]);
        generation = typeof stored === 'string' ? stored : FIRST_GENERATION;
        if (entry === generation) {
          local?.memberships.set(localKey, true, since);
          return true;
        }
      } catch {
        // No cache now: the database answers, and nothing is written back.
      }
      const member = await load();
      if (member && generation !== undefined && timing.mayWriteBack(consultedAt)) {
        await store.write(memberKey(chatId, userId), generation, timing.keepMs).catch(() => undefined);
        local?.memberships.set(localKey, true, since);
      }
      return member;
    },
    async forget(chatId, userId) {
      await store.writeSurely(
        generationKey(chatId, userId),
        randomBytes(12).toString('base64url'),
        timing.markerMs,
      );
      // The leave is committed: it is not failed for a message that could not go out now (it goes
      // out once Redis is back; until then other instances keep a yes at most the local TTL).
      await local?.invalidate('member', `${chatId}:${userId ?? '*'}`).catch(() => undefined);
    },
  };
}
