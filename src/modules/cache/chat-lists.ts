import { hash, randomBytes } from 'node:crypto';
import { ExpiringMap, type CacheStore } from '../../infra/cache.js';
import { hashTag } from '../../infra/redis.js';
import type { ChatListCache, LoadedChatList } from '../chats/index.js';
import { CACHED_LIMITS } from './history.js';
import { readThrough, type ReadPolicy } from './read-through.js';

/** A user's generation until it is first bumped (or after its marker expired). */
const FIRST_GENERATION = '0';
/** The change log of chats: every chat whose messages or members' names changed, newest last. */
const CHATS_LOG = `chatlist:${hashTag('chats')}`;
/** Bumped when a chat's change could not be logged: every list remembered before is void then. */
const EPOCH_KEY = `chatlist:${hashTag('chats')}:epoch`;
/** The chats whose latest change the log holds: a list older than all of them is read again. */
const LOG_KEEP = 10_000;
/** Changes looked at per read: a list with more chats changed since it was read is read again. */
const CHANGES_LIMIT = 64;

const generationKey = (userId: string) => `chatlist:generation:${hashTag(userId)}`;
const listKey = (userId: string, limit: number) => `chatlist:page:${hashTag(userId)}:${limit}`;

/**
 * Which chats a list covers, as a Bloom filter: "maybe" for every chat the user is in, rarely for
 * another (then the list is only read again when it need not be). A few bits a chat, where the ids
 * themselves would take 36 bytes each.
 */
const FILTER_BITS_PER_CHAT = 12;
const FILTER_HASHES = 4;

function filterPositions(chatId: string, bits: number): number[] {
  const digest = hash('sha256', chatId, 'buffer');
  return Array.from({ length: FILTER_HASHES }, (_, i) => digest.readUInt32BE(4 * i) % bits);
}

function filterOf(chatIds: string[]): Buffer {
  const filter = Buffer.alloc(Math.ceil((Math.max(chatIds.length, 8) * FILTER_BITS_PER_CHAT) / 8));
  for (const chatId of chatIds) {
    for (const bit of filterPositions(chatId, filter.length * 8)) filter[bit >> 3]! |= 1 << (bit & 7);
  }
  return filter;
}

function mayHold(filter: Buffer, chatId: string): boolean {
  return filterPositions(chatId, filter.length * 8).every(
    (bit) => (filter[bit >> 3]! & (1 << (bit & 7))) !== 0,
  );
}

/** What a list was read under, kept in front of its filter and its bytes. */
interface ListHeader {
  generation: string;
  epoch: string | null;
  /** The chats log's position before the list was read from the database. */
  position: number;
  storedAt: number;
  filterBytes: number;
}

interface ListEntry extends ListHeader {
  filter: Buffer;
  body: Buffer;
}

const NEWLINE = 0x0a;

function encodeEntry({ filter, body, ...header }: ListEntry): Buffer {
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), filter, body]);
}

function decodeEntry(stored: unknown): ListEntry | undefined {
  if (!Buffer.isBuffer(stored)) return undefined;
  const end = stored.indexOf(NEWLINE);
  if (end < 0) return undefined;
  try {
    const header = JSON.parse(stored.subarray(0, end).toString()) as ListHeader;
    const filterEnd = end + 1 + header.filterBytes;
    return { ...header, filter: stored.subarray(end + 1, filterEnd), body: stored.subarray(filterEnd) };
  } catch {
    return undefined;
  }
}

/**
 * Each user's first chat-list page by limit. A list shows the user's memberships (their joins,
 * leaves, names and read marks) and, for every chat they are in, its activity, last message and
 * sender's name. So a remembered list holds while:
 *
 * - the user's generation is the one it was read under: the user's own changes bump it, one write
 *   every instance sees at once;
 * - no chat it covers changed: every message and every join or rename appends the chat to the
 *   chats log, and a read looks at what was appended since the list was read (one read, whatever
 *   the number of chats), against the list's filter of the user's chats. A change that could not
 *   be logged bumps the log's epoch instead (kept until Redis takes it), voiding every list.
 *
 * As for history pages, an instance cut off from Redis while the others are not shows its changes
 * to their lists once it is back (its kept writes go out first) or when their freshness ends.
 */
export function chatListCache(
  store: CacheStore,
  policy: ReadPolicy,
): ChatListCache & {
  chatChanged(chatId: string): Promise<void>;
} {
  const { timing } = policy;
  // The log position each list was last seen under on this instance: with it the log is read along
  // with the list, in one round trip (a wrong guess only costs a second read).
  const positions = new ExpiringMap<number>({ capacity: 100_000, sweepEveryMs: 10_000 });
  const changesAfter = (after: number, limit: number) =>
    Promise.all([store.read([EPOCH_KEY]), store.changesSince(CHATS_LOG, after, limit, LOG_KEEP)]);
  return {
    async read(userId, limit, load) {
      if (!CACHED_LIMITS.has(limit)) {
        policy.count('MISS');
        return { body: (await load()).json, cache: 'MISS' };
      }
      let generation = FIRST_GENERATION;
      let epoch: string | null = null;
      let position = 0;
      const key = listKey(userId, limit);
      const { value, cache } = await readThrough<{ body: string | Buffer; loaded?: LoadedChatList }>(
        {
          async lookup() {
            const hint = positions.get(key);
            const [[stored, held], guessed] = await Promise.all([
              store.read([generationKey(userId), key]),
              hint === undefined ? undefined : changesAfter(hint, CHANGES_LIMIT),
            ]);
            generation = typeof stored === 'string' ? stored : FIRST_GENERATION;
            const entry = decodeEntry(held);
            if (entry) positions.set(key, entry.position, timing.keepMs);
            const [[storedEpoch], changes] =
              entry && guessed && entry.position === hint
                ? guessed
                : // Without an entry only the position matters (what the list read next is read under).
                  await changesAfter(entry?.position ?? 0, entry ? CHANGES_LIMIT : 0);
            epoch = typeof storedEpoch === 'string' ? storedEpoch : null;
            position = changes.position;
            if (entry?.generation !== generation || entry.epoch !== epoch || !changes.complete)
              return undefined;
            if (changes.members.some((chatId) => mayHold(entry.filter, chatId))) return undefined;
            return { value: { body: entry.body }, storedAt: entry.storedAt };
          },
          load: async () => {
            const loaded = await load();
            return { body: loaded.json, loaded };
          },
          async writeBack({ loaded }) {
            if (!loaded) return;
            const filter = filterOf(loaded.chatIds);
            const entry: ListEntry = {
              generation,
              epoch,
              position,
              storedAt: Date.now(),
              filterBytes: filter.length,
              filter,
              body: Buffer.from(loaded.json),
            };
            await store.write(key, encodeEntry(entry), timing.keepMs);
            positions.set(key, position, timing.keepMs);
          },
        },
        policy,
      );
      return { body: value.body, cache };
    },

    async userChanged(userId) {
      await store.writeSurely(generationKey(userId), randomBytes(12).toString('base64url'), timing.markerMs);
    },

    async chatChanged(chatId) {
      try {
        await store.append(CHATS_LOG, chatId, LOG_KEEP);
      } catch {
        await store.writeSurely(EPOCH_KEY, randomBytes(12).toString('base64url'), timing.markerMs);
      }
    },
  };
}
