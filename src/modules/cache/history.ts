import { createHash, randomBytes } from 'node:crypto';
import type { CacheStore } from '../../infra/cache.js';
import type { HistoryCache } from '../messages/index.js';
import type { Timing } from './timing.js';

interface PageEntry {
  generation: string;
  storedAt: number;
  /** The page's JSON text, sent as it is. */
  json: string;
}

/** A chat's generation until its first invalidation (or after its marker expired). */
const FIRST_GENERATION = '0';

const generationKey = (chatId: string) => `history:generation:${chatId}`;

function pageKey(chatId: string, limit: number, from: string | undefined): string {
  // Real cursors are short; anything else only ever misses, under a bounded key.
  const cursor =
    from === undefined || from.length <= 64 ? (from ?? '') : createHash('sha256').update(from).digest('hex');
  return `history:page:${chatId}:${limit}:${cursor}`;
}

/**
 * History pages by chat, limit and cursor. An entry records the chat's generation it was read under;
 * a new message gives the chat a new generation (one write, seen by every instance at once), and
 * entries of any other generation never match again. The generation is read together with the
 * entry and before the database, so a page written back under generation G holds every message
 * acknowledged before G was set.
 */
export function historyCache(
  store: CacheStore,
  timing: Timing,
  isUnavailable: (error: unknown) => boolean,
): HistoryCache {
  return {
    async read(chatId, limit, from, load) {
      const consultedAt = Date.now();
      const key = pageKey(chatId, limit, from);
      let generation: string | undefined;
      let current: PageEntry | undefined;
      try {
        const [storedGeneration, entry] = (await store.read([generationKey(chatId), key])) as [
          string | undefined,
          PageEntry | undefined,
        ];
        generation = storedGeneration ?? FIRST_GENERATION;
        if (entry?.generation === generation) current = entry;
      } catch {
        // No cache now: the database answers, and nothing is written back.
      }
      if (current && timing.isFresh(current.storedAt)) return { json: current.json, cache: 'HIT' };

      let json: string;
      try {
        json = await load();
      } catch (error) {
        // stale-if-error: still the current generation, so no acknowledged message is missing.
        if (current && isUnavailable(error)) return { json: current.json, cache: 'STALE' };
        throw error;
      }
      if (generation !== undefined && timing.mayWriteBack(consultedAt)) {
        const entry: PageEntry = { generation, storedAt: Date.now(), json };
        await store.write(key, entry, timing.keepMs).catch(() => undefined);
      }
      return { json, cache: 'MISS' };
    },

    async invalidate(chatId) {
      await store.writeSurely(generationKey(chatId), randomBytes(12).toString('base64url'), timing.markerMs);
    },
  };
}
