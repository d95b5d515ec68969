import type { Timing } from './timing.js';

/** A value as the cache remembers it. */
export interface Entry<T> {
  value: T;
  storedAt: number;
}

/** Where the answer came from: the cache, the database, or the cache because the database is down. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE';

export interface ReadThrough<T> {
  /** The current entry, if any; throws when the cache cannot be reached. */
  lookup(): Promise<Entry<T> | undefined>;
  /** The value from the database. */
  load(): Promise<T>;
  /** Remembers a loaded value; only called when the cache answered the lookup. */
  writeBack(value: T): Promise<void>;
}

/**
 * The one cache algorithm: a fresh entry answers; otherwise the database does and the value is
 * written back (only when the read ended soon after the lookup, so a slow reader cannot put back
 * what an invalidation marker already hides); when the database is down a current but no longer
 * fresh entry answers (stale-if-error). With the cache unreachable the database answers alone.
 */
export async function readThrough<T>(
  steps: ReadThrough<T>,
  policy: ReadPolicy,
): Promise<{ value: T; cache: CacheStatus }> {
  const result = await read(steps, policy);
  policy.count(result.cache);
  return result;
}

/** How a cache reads through: its timings, which failures are outages, where reads are counted. */
export interface ReadPolicy {
  timing: Timing;
  isUnavailable: (error: unknown) => boolean;
  count: (result: CacheStatus) => void;
}

async function read<T>(
  steps: ReadThrough<T>,
  { timing, isUnavailable }: ReadPolicy,
): Promise<{ value: T; cache: CacheStatus }> {
  const consultedAt = Date.now();
  let entry: Entry<T> | undefined;
  let reachable = false;
  try {
    entry = await steps.lookup();
    reachable = true;
  } catch {
    // No cache now: the database answers, and nothing is written back.
  }
  if (entry && timing.isFresh(entry.storedAt)) return { value: entry.value, cache: 'HIT' };

  let value: T;
  try {
    value = await steps.load();
  } catch (error) {
    if (entry && isUnavailable(error)) return { value: entry.value, cache: 'STALE' };
    throw error;
  }
  if (reachable && timing.mayWriteBack(consultedAt)) await steps.writeBack(value).catch(() => undefined);
  return { value, cache: 'MISS' };
}
