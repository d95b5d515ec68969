import { createCacheStore } from '../../infra/cache.js';
import type { SessionCache } from '../auth/index.js';
import type { ChatListCache, MembershipCache } from '../chats/index.js';
import type { HistoryCache } from '../messages/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { chatListCache } from './chat-lists.js';
import { historyCache } from './history.js';
import { LocalLayer } from './local.js';
import { membershipCache } from './memberships.js';
import type { ReadPolicy } from './read-through.js';
import { sessionCache } from './sessions.js';
import { Timing } from './timing.js';

export interface CacheModule extends AppModule {
  sessions: SessionCache;
  memberships: MembershipCache;
  history: HistoryCache;
  chatLists: ChatListCache;
  /** Sessions and memberships kept in this process, with REDIS_URL (tests, benchmarks). */
  local?: LocalLayer;
  /** Entries held under keys containing `fragment`, and their bytes (tests, benchmarks). */
  held(fragment: string): Promise<{ keys: number; bytes: number }>;
}

/**
 * Caches history pages, sessions and memberships: in memory, or in Redis with REDIS_URL so that
 * every instance sees the same entries and the same invalidations. Without the cache (or during a
 * Redis outage) everything is read from the database. With Redis, sessions and memberships are
 * also kept in this process for a few seconds (local.ts), forgotten on every instance by a message.
 */
export function cacheModule({ config, db, logger, metrics }: ModuleContext): CacheModule {
  const store = createCacheStore(config.redisUrl, logger);
  // Without Redis the store is this process's memory already: nothing to put in front of it.
  const local =
    config.redisUrl && config.cache.localEntries > 0
      ? new LocalLayer(config.redisUrl, logger, {
          entries: config.cache.localEntries,
          ttlMs: config.cache.localTtlMs,
        })
      : undefined;
  const timing = new Timing(config.cache.ttlSeconds, config.cache.staleSeconds);
  const policy = (cache: string): ReadPolicy => {
    // One counter per result, looked up once rather than by labels on every read.
    const counters = new Map<string, { inc(): void }>();
    return {
      timing,
      isUnavailable: (error) => db.isUnavailable(error),
      count(result) {
        let counter = counters.get(result);
        if (!counter) counters.set(result, (counter = metrics.cacheReads.labels({ cache, result })));
        counter.inc();
      },
    };
  };
  const history = historyCache(store, policy('history'));
  const chatLists = chatListCache(store, policy('chat lists'));
  return {
    name: 'cache',
    sessions: sessionCache(store, policy('sessions'), local),
    memberships: membershipCache(store, timing, local),
    // What changes a chat's pages (a message, a member's name) changes its members' chat lists.
    history: {
      read: (...args) => history.read(...args),
      async invalidate(chatId) {
        await Promise.all([history.invalidate(chatId), chatLists.chatChanged(chatId)]);
      },
    },
    chatLists,
    local,
    held: (fragment) => store.held(fragment),
    dependencies: local ? [store.monitor, local.monitor] : [store.monitor],
    async close() {
      await local?.close();
      await store.close();
    },
  };
}
