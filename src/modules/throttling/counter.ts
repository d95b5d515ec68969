import MemoryLimiter from 'koa-ratelimit/limiter/memory.js';
import { ExpiringMap } from '../../infra/cache.js';
import { Breaker } from '../../infra/breaker.js';
import type { Logger } from '../../infra/logger.js';
import type { DependencyMonitor } from '../../infra/monitor.js';
import { connectRedis, hashTag, type RedisConnection } from '../../infra/redis.js';

/** A budget: at most `max` requests per key in `windowMs`. */
export interface Policy {
  name: string;
  max: number;
  windowMs: number;
}

/** Where one request leaves its key's budget. */
export interface Verdict {
  allowed: boolean;
  limit: number;
  /** Requests left after this one. */
  remaining: number;
  /** Seconds until the budget is back (the window resets, or its oldest request leaves it). */
  resetSeconds: number;
}

/** Counts requests per key: in this process's memory (koa-ratelimit's driver), or in Redis. */
export interface RateCounter {
  /** Counts one request for `key`; undefined when the store cannot answer now (fail open). */
  take(policy: Policy, key: string): Promise<Verdict | undefined>;
  /** Redis's reachability, when the counts live there. */
  readonly monitor?: DependencyMonitor;
  /** Forgets `key`'s count. */
  clear(policy: Policy, key: string): Promise<void>;
  close(): Promise<void>;
}

const SWEEP_EVERY_MS = 10_000;

function verdictOf(limit: { remaining: number; reset: number; total: number }): Verdict {
  return {
    allowed: limit.remaining > 0,
    limit: limit.total,
    remaining: Math.max(0, limit.remaining - 1),
    resetSeconds: Math.max(0, Math.ceil(limit.reset - Date.now() / 1000)),
  };
}

/**
 * The memory driver keeps a fixed window per key in a Map that never evicts: ours sweeps, and drops
 * the oldest keys beyond `capacity`.
 */
export class MemoryCounter implements RateCounter {
  readonly counts: ExpiringMap<{ reset: number }>;

  constructor(capacity: number) {
    this.counts = new ExpiringMap({
      capacity,
      sweepEveryMs: SWEEP_EVERY_MS,
      expiresAt: (entry) => entry.reset * 1000,
    });
  }

  async take(policy: Policy, key: string): Promise<Verdict> {
    const limiter = new MemoryLimiter({
      id: key,
      db: this.counts,
      max: policy.max,
      duration: policy.windowMs,
      namespace: policy.name,
    });
    return verdictOf(await limiter.get());
  }

  clear(policy: Policy, key: string): Promise<void> {
    this.counts.delete(`${policy.name}:${key}`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.counts.clear();
    return Promise.resolve();
  }
}

// KEYS: the budget's counter. ARGV: window in ms. Returns {requests in the window, ms until it ends}.
const FIXED_WINDOW = `
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}`;

type Counting = RedisConnection['client'] & {
  countRequest(key: string, windowMs: number): Promise<[number, number]>;
};

/**
 * In Redis, shared by every instance: a fixed window per key, as in memory. One script, three
 * commands (INCR, PTTL, PEXPIRE when the window starts) on one small counter, whatever the budget.
 */
class RedisCounter implements RateCounter {
  private readonly breaker: Breaker;
  private readonly client: Counting;
  readonly monitor: DependencyMonitor;

  constructor(private readonly redis: RedisConnection) {
    this.monitor = redis.monitor;
    this.breaker = new Breaker(redis.monitor);
    redis.client.defineCommand('countRequest', { numberOfKeys: 1, lua: FIXED_WINDOW });
    this.client = redis.client as Counting;
  }

  take(policy: Policy, key: string): Promise<Verdict | undefined> {
    return this.guarded(async () => {
      const [count, leftMs] = await this.client.countRequest(keyOf(policy, key), policy.windowMs);
      return {
        allowed: count <= policy.max,
        limit: policy.max,
        remaining: Math.max(0, policy.max - count),
        resetSeconds: Math.ceil(leftMs / 1000),
      };
    });
  }

  async clear(policy: Policy, key: string): Promise<void> {
    await this.guarded(() => this.redis.client.del(keyOf(policy, key)));
  }

  close(): Promise<void> {
    return this.redis.close();
  }

  /** Skips Redis while it is away or was just too slow; a failure lets the request through. */
  private async guarded<T>(operation: () => Promise<T>): Promise<T | undefined> {
    if (this.redis.client.status !== 'ready') return undefined;
    try {
      return await this.breaker.run(operation);
    } catch {
      return undefined;
    }
  }
}

// Tagged: a user's counters share one cluster slot. (`messenger:limit:` held the sliding windows of
// earlier releases, sorted sets.)
const keyOf = (policy: Policy, key: string) => `messenger:budget:${policy.name}:${hashTag(key)}`;

/** In memory the counter keeps at most `memoryKeys` keys; in Redis keys expire with their window. */
export function createRateCounter(
  redisUrl: string | undefined,
  logger: Logger,
  memoryKeys: number,
): RateCounter {
  return redisUrl
    ? new RedisCounter(connectRedis(redisUrl, 'rate limits', logger, { autoPipelining: true }))
    : new MemoryCounter(memoryKeys);
}
