import { randomBytes } from 'node:crypto';
import type { CacheStore } from '../../infra/cache.js';
import { hashTag } from '../../infra/redis.js';
import { NEWEST_PAGE, type HistoryCache, type LoadedPage } from '../messages/index.js';
import { readThrough, type ReadPolicy } from './read-through.js';
import { SharedProbes } from './shared-probes.js';

interface PageEntry {
  generation: string;
  storedAt: number;
  /** The page's JSON text as UTF-8, sent as it is. */
  body: Buffer;
  /** Set on the chat's last page: the position after which a new message would change it. */
  growsAfter?: string;
}

/** What is kept with a page, in front of its bytes. */
interface PageHeader {
  generation: string;
  storedAt: number;
  growsAfter?: string;
}

const NEWLINE = 0x0a;

/**
 * A page entry is one value: its header as a line of JSON, then the page's bytes (JSON text holds
 * no raw newline, so the first one ends the header). Read back, the page is a slice of what Redis
 * sent: never decoded, parsed or serialized again.
 */
function encodeEntry({ body, ...header }: PageEntry): Buffer {
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body]);
}

function decodeEntry(stored: unknown): PageEntry | undefined {
  // Anything else (an entry of another format) is a miss.
  if (!Buffer.isBuffer(stored)) return undefined;
  const end = stored.indexOf(NEWLINE);
  if (end < 0) return undefined;
  try {
    const header = JSON.parse(stored.subarray(0, end).toString()) as PageHeader;
    return { ...header, body: stored.subarray(end + 1) };
  } catch {
    return undefined;
  }
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
// Pages as bytes (earlier releases kept them as JSON under `history:page:`, which they still read).
const pageKey = (chatId: string, limit: number, afterSeq: string | undefined) =>
  `history:pages:${hashTag(chatId)}:${limit}:${afterSeq ?? ''}`;
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
 *   began is always seen; reads at the same time share it, see shared-probes.ts). Pages with a `next` never change with new messages: seqs only grow.
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
  // Reads of one chat's last page at the same time share the probe (each still one started after
  // it began): a chat many members open at once costs the database one probe at a time.
  const probes = new SharedProbes<boolean>();
  return {
    async read(chatId, limit, afterSeq, source) {
      if (!CACHED_LIMITS.has(limit)) {
        const { json } = await source.load();
        policy.count('MISS');
        return { body: json, cache: 'MISS' };
      }
      const key = pageKey(chatId, limit, afterSeq);
      let generation = FIRST_GENERATION;
      // The first and the newest page are the ones every client opens.
      let canonical = afterSeq === undefined || afterSeq === NEWEST_PAGE;
      const { value, cache } = await readThrough<{ body: string | Buffer; loaded?: LoadedPage }>(
        {
          async lookup() {
            const ticket = probes.ticket();
            const keys = [generationKey(chatId), key];
            if (afterSeq !== undefined) keys.push(startKey(chatId, limit, afterSeq));
            const [stored, held, start] = await store.read(keys);
            generation = typeof stored === 'string' ? stored : FIRST_GENERATION;
            canonical ||= start === true;
            const entry = decodeEntry(held);
            if (entry?.generation !== generation) return undefined;
            const value = { body: entry.body };
            if (entry.growsAfter === undefined) return { value, storedAt: entry.storedAt };
            let grown: boolean;
            try {
              const after = entry.growsAfter;
              grown = await probes.probe(`${chatId}:${after}`, ticket, () => source.hasNewer(after));
            } catch {
              // Not confirmed current, so never fresh: it may only answer as STALE, when the
              // database turns out to be down for the page too.
              return { value, storedAt: 0 };
            }
            return grown ? undefined : { value, storedAt: entry.storedAt };
          },
          load: async () => {
            const loaded = await source.load();
            return { body: loaded.json, loaded };
          },
          async writeBack({ loaded: page }) {
            if (!canonical || !page) return;
            const body = Buffer.from(page.json);
            const entry: PageEntry = { generation, storedAt: Date.now(), body };
            if (page.growsAfter !== undefined) entry.growsAfter = page.growsAfter;
            await store.write(key, encodeEntry(entry), timing.keepMs);
            if (page.nextAfter !== undefined) {
              await store.write(startKey(chatId, limit, page.nextAfter), true, timing.keepMs);
            }
          },
        },
        policy,
      );
      return { body: value.body, cache };
    },

    async invalidate(chatId) {
      await store.writeSurely(generationKey(chatId), randomBytes(12).toString('base64url'), timing.markerMs);
    },
  };
}
