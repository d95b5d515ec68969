import { randomBytes } from 'node:crypto';
import type { CacheStore } from '../../infra/cache.js';
import { hashTag } from '../../infra/redis.js';
import type { HistoryCache } from '../messages/index.js';
import { readThrough, type ReadPolicy } from './read-through.js';

interface PageEntry {
  generation: string;
  storedAt: number;
  /** The page's JSON text, sent as it is. */
  json: string;
}

/** A chat's generation until its first invalidation (or after its marker expired). */
const FIRST_GENERATION = '0';

// A chat's generation and its pages share a hash tag: read together in one round trip on a cluster too.
const generationKey = (chatId: string) => `history:generation:${hashTag(chatId)}`;
// Cursors reach this point decoded and checked, so they are short.
const pageKey = (chatId: string, limit: number, from: string | undefined) =>
  `history:page:${hashTag(chatId)}:${limit}:${from ?? ''}`;

/**
 * History pages by chat, limit and cursor. An entry records the chat's generation it was read under;
 * a new message gives the chat a new generation (one write, seen by every instance at once), and
 * entries of any other generation never match again. The generation is read together with the
 * entry and before the database, so a page written back under generation G holds every message
 * acknowledged before G was set.
 */
export function historyCache(store: CacheStore, policy: ReadPolicy): HistoryCache {
  const { timing } = policy;
  return {
    async read(chatId, limit, from, load) {
      const key = pageKey(chatId, limit, from);
      let generation = FIRST_GENERATION;
      const { value, cache } = await readThrough(
        {
          async lookup() {
            const [stored, entry] = (await store.read([generationKey(chatId), key])) as [
              string | undefined,
              PageEntry | undefined,
            ];
            generation = stored ?? FIRST_GENERATION;
            return entry?.generation === generation
              ? { value: entry.json, storedAt: entry.storedAt }
              : undefined;
          },
          load,
          async writeBack(json) {
            const entry: PageEntry = { generation, storedAt: Date.now(), json };
            await store.write(key, entry, timing.keepMs);
          },
        },
        policy,
      );
      return { json: value, cache };
    },

    async invalidate(chatId) {
      await store.writeSurely(generationKey(chatId), randomBytes(12).toString('base64url'), timing.markerMs);
    },
  };
}
