import { randomBytes } from 'node:crypto';
import type { CacheStore } from '../../infra/cache.js';
import { hashTag } from '../../infra/redis.js';
import { NEWEST_PAGE, type HistoryCache, type LoadedPage } from '../messages/index.js';
import { readThrough, type ReadPolicy } from './read-through.js';

interface PageEntry {
  generation: string;
  storedAt: number;
  /** The page's JSON text, sent as it is. */
  json: string;
  /** Set on the chat's last page: the position after which a new message would change it. */
  growsAfter?: string;
}

/** A chat's generation until its first invalidation (or after its marker expired). */
const FIRST_GENERATION = '0';

/**
 * The page sizes that are cached (a 1-2-5 series). Any other limit is read from the database: with
 * every limit of 1..1000 cacheable, one chat's history could be held a thousand times over.
 */
export const CACHED_LIMITS: ReadonlySet<number> = new Set([1, 2, 5, 10, 20, 50, 100]);

// Every key of a chat carries its hash tag: the generation and a page (and its start marker) are
// read together, in one round trip to one node on a cluster too.
const generationKey = (chatId: string) => `history:generation:${hashTag(chatId)}`;
const pageKey = (chatId: string, limit: number, afterSeq: string | undefined) =>
  `history:page:${hashTag(chatId)}:${limit}:${afterSeq ?? ''}`;
/** Says that a page of `limit` starting after `afterSeq` is one the server itself led to. */
const startKey = (chatId: string, limit: number, afterSeq: string) =>
  `history:start:${hashTag(chatId)}:${limit}:${afterSeq}`;

/**
 * History pages by chat, limit and position. Two rules keep them correct and bounded:
 *
 * - Current. An entry records the chat's generation it was read under, and a new message (or a
 *   rename) gives the chat a new generation, seen by every instance at once. That write can fail,
 *   though (the sending instance cut off from Redis while the others are not), and the message is
 *   acknowledged all the same. So a page that new messages would change — the chat's last page —
 *   is served from the cache only after the database confirms that no message follows the page's
 *   end (one index probe, made after the read began: a message acknowledged before the read
 *   began is always seen). Pages with a `next` never change with new messages: seqs only grow.
 *   A rename whose generation write failed can still show the old name until the entry's
 *   freshness ends or the sender's kept write goes out.
 *
 * - Bounded. Only canonical shapes are kept: limits from CACHED_LIMITS, and for each the first
 *   page, the newest page and the pages the server led to from a kept page of the same limit (a
 *   start marker is written with each page that has a `next`). A hand-made cursor (`h1:0`, any
 *   seq) is answered from the database and never stored, so a chat's pages held per limit are at
 *   most one copy of its history (and its newest page), whatever clients send.
 */
export function historyCache(store: CacheStore, policy: ReadPolicy): HistoryCache {
  const { timing } = policy;
  return {
    async read(chatId, limit, afterSeq, source) {
      if (!CACHED_LIMITS.has(limit)) {
        const { json } = await source.load();
        policy.count('MISS');
        return { json, cache: 'MISS' };
      }
      const key = pageKey(chatId, limit, afterSeq);
      let generation = FIRST_GENERATION;
      // The first and the newest page are the ones every client opens.
      let canonical = afterSeq === undefined || afterSeq === NEWEST_PAGE;
      const { value, cache } = await readThrough<LoadedPage>(
        {
          async lookup() {
            const keys = [generationKey(chatId), key];
            if (afterSeq !== undefined) keys.push(startKey(chatId, limit, afterSeq));
            const [stored, entry, start] = (await store.read(keys)) as [
              string | undefined,
              PageEntry | undefined,
              boolean | undefined,
            ];
            generation = stored ?? FIRST_GENERATION;
            canonical ||= start === true;
            if (entry?.generation !== generation) return undefined;
            if (entry.growsAfter === undefined)
              return { value: { json: entry.json }, storedAt: entry.storedAt };
            let grown: boolean;
            try {
              grown = await source.hasNewer(entry.growsAfter);
            } catch {
              // Not confirmed current, so never fresh: it may only answer as STALE, when the
              // database turns out to be down for the page too.
              return { value: { json: entry.json }, storedAt: 0 };
            }
            return grown ? undefined : { value: { json: entry.json }, storedAt: entry.storedAt };
          },
          load: () => source.load(),
          async writeBack(page) {
            if (!canonical) return;
            const entry: PageEntry = { generation, storedAt: Date.now(), json: page.json };
            if (page.growsAfter !== undefined) entry.growsAfter = page.growsAfter;
            await store.write(key, entry, timing.keepMs);
            if (page.nextAfter !== undefined) {
              await store.write(startKey(chatId, limit, page.nextAfter), true, timing.keepMs);
            }
          },
        },
        policy,
      );
      return { json: value.json, cache };
    },

    async invalidate(chatId) {
      await store.writeSurely(generationKey(chatId), randomBytes(12).toString('base64url'), timing.markerMs);
    },
  };
}
