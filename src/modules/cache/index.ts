import { createCacheStore } from '../../infra/cache.js';
import type { AppModule, ModuleContext } from '../types.js';
import { historyCache } from './history.js';
import { membershipCache } from './memberships.js';
import { sessionCache } from './sessions.js';
import { Timing } from './timing.js';

/**
 * Caches history pages, sessions and memberships: in memory, or in Redis with REDIS_URL so that
 * every instance sees the same entries and the same invalidations. Without the cache (or during a
 * Redis outage) everything is read from the database.
 */
export function cacheModule({ config, db, extensions, logger }: ModuleContext): AppModule {
  const store = createCacheStore(config.redisUrl, logger);
  const timing = new Timing(config.cache.ttlSeconds, config.cache.staleSeconds);
  const isUnavailable = (error: unknown) => db.isUnavailable(error);
  extensions.sessionCache = sessionCache(store, timing, isUnavailable);
  extensions.membershipCache = membershipCache(store, timing);
  extensions.historyCache = historyCache(store, timing, isUnavailable);
  return { name: 'cache', close: () => store.close() };
}
