import KeyvRedis, { createClient, createCluster } from '@keyv/redis';
import { createCache, type Cache as CacheManager } from 'cache-manager';
import { Keyv } from 'keyv';
import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { Breaker } from './breaker.js';
import { clusterTarget } from './redis.js';

/**
 * A shared key-value cache: Redis when REDIS_URL is set (every instance sees the same entries), else
 * this process's memory. Every operation answers fast or throws DependencyUnavailableError; callers go on
 * without the cache then.
 */
export interface CacheStore {
  readonly backend: 'memory' | 'redis';
  readonly monitor: DependencyMonitor;
  /** The values of `keys` (undefined where absent), read in one round trip, so all or none. */
  read(keys: string[]): Promise<unknown[]>;
  write(key: string, value: unknown, ttlMs: number): Promise<void>;
  /**
   * A write that must not be lost (an invalidation). Never throws: when the store cannot take it now,
   * it is kept and written before this instance uses the store again.
   */
  writeSurely(key: string, value: unknown, ttlMs: number): Promise<void>;
  /** How many entries whose key contains `fragment` are held, and their bytes (tests, benchmarks). */
  held(fragment: string): Promise<{ keys: number; bytes: number }>;
  close(): Promise<void>;
}

/** Beyond this many invalidations kept during an outage, the whole cache is cleared on recovery. */
const MAX_KEPT_WRITES = 10_000;
/** What the in-memory store may hold, in bytes of string storage (V8 keeps at most 2 bytes a char). */
export const MEMORY_CAPACITY_BYTES = 64 * 1024 * 1024;
/** Per-entry bookkeeping (map slots, expiry record) counted against the capacity. */
const ENTRY_OVERHEAD_BYTES = 96;

/** An upper bound of the bytes an in-memory entry costs: a key and a serialized value. */
export function entryBytes(key: string, value: unknown): number {
  return ENTRY_OVERHEAD_BYTES + 2 * (key.length + (typeof value === 'string' ? value.length : 8));
}
const SWEEP_EVERY_MS = 10_000;
const NAMESPACE = 'messenger:cache';

/**
 * A Map that forgets, for in-memory stores that must not grow without bound: entries past their
 * expiry are swept on writes (at most once per `sweepEveryMs`), and the oldest entries go when the
 * total weight (1 per entry unless `weigh` says otherwise) exceeds `capacity`.
 */
export class ExpiringMap<V> extends Map<string, V> {
  private readonly meta = new Map<string, { expiresAt: number | undefined; weight: number }>();
  private weight = 0;

  /** The total weight held (bytes, when `weigh` counts bytes). */
  get held(): number {
    return this.weight;
  }

  /** The weight of one entry, if held. */
  weightOf(key: string): number | undefined {
    return this.meta.get(key)?.weight;
  }
  private nextSweep = 0;

  constructor(
    private readonly options: {
      capacity: number;
      sweepEveryMs: number;
      /** Expiry of values written without a ttl (e.g. a rate-limit window's end). */
      expiresAt?: (value: V) => number | undefined;
      weigh?: (key: string, value: V) => number;
      now?: () => number;
    },
  ) {
    super();
  }

  /** `ttlMs` is what Keyv passes to a Map store; plain Map callers leave it out. */
  override set(key: string, value: V, ttlMs?: number): this {
    const now = this.now();
    if (now >= this.nextSweep) this.sweep(now);
    // Re-inserted at the end: insertion order is the eviction order.
    this.delete(key);
    super.set(key, value);
    const weight = this.options.weigh?.(key, value) ?? 1;
    this.meta.set(key, { expiresAt: ttlMs ? now + ttlMs : undefined, weight });
    this.weight += weight;
    for (const oldest of this.keys()) {
      if (this.weight <= this.options.capacity) break;
      this.delete(oldest);
    }
    return this;
  }

  override delete(key: string): boolean {
    const entry = this.meta.get(key);
    if (entry) {
      this.weight -= entry.weight;
      this.meta.delete(key);
    }
    return super.delete(key);
  }

  override clear(): void {
    this.meta.clear();
    this.weight = 0;
    super.clear();
  }

  /** Drops every expired entry. */
  sweep(now = this.now()): void {
    this.nextSweep = now + this.options.sweepEveryMs;
    for (const [key, value] of this) {
      const expiresAt = this.meta.get(key)?.expiresAt ?? this.options.expiresAt?.(value);
      if (expiresAt !== undefined && expiresAt <= now) this.delete(key);
    }
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }
}

/** cache-manager with a circuit breaker in front, and invalidations kept while the store is away. */
class GuardedCache implements CacheStore {
  private readonly breaker: Breaker;
  private readonly kept = new Map<string, { value: unknown; ttlMs: number }>();
  private keptOverflowed = false;
  private replaying: Promise<void> | undefined;
  // cache-manager's mget reports a failing store by an event, not by rejecting.
  private readonly readFailures = new WeakMap<string[], unknown>();

  constructor(
    readonly backend: 'memory' | 'redis',
    private readonly cache: CacheManager,
    readonly monitor: DependencyMonitor,
    private readonly disconnect: () => Promise<void>,
    private readonly measure: (fragment: string) => Promise<{ keys: number; bytes: number }>,
  ) {
    this.breaker = new Breaker(monitor);
    cache.on('mget', ({ keys, error }) => {
      if (error !== undefined) this.readFailures.set(keys, error);
    });
  }

  async read(keys: string[]): Promise<unknown[]> {
    await this.admit();
    return this.attempt(async () => {
      const values = await this.cache.mget<unknown>(keys);
      if (this.readFailures.has(keys)) throw this.readFailures.get(keys);
      return values;
    });
  }

  async write(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.admit();
    await this.attempt(() => this.cache.set(key, value, ttlMs));
  }

  async writeSurely(key: string, value: unknown, ttlMs: number): Promise<void> {
    try {
      await this.write(key, value, ttlMs);
    } catch {
      if (this.kept.size >= MAX_KEPT_WRITES) {
        this.keptOverflowed = true;
        this.kept.clear();
      }
      if (!this.keptOverflowed) this.kept.set(key, { value, ttlMs });
    }
  }

  /** Called when the store is back: kept invalidations go out before anyone reads again. */
  replayKept(): void {
    this.admit().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.disconnect();
  }

  held(fragment: string): Promise<{ keys: number; bytes: number }> {
    return this.measure(fragment);
  }

  /** Fails fast while the breaker is open; lets one probe through once it may retry. */
  private async admit(): Promise<void> {
    if (!this.breaker.admits) throw new DependencyUnavailableError(this.monitor.name);
    if (this.kept.size === 0 && !this.keptOverflowed) return;
    this.replaying ??= this.replay().finally(() => (this.replaying = undefined));
    await this.replaying;
  }

  private async replay(): Promise<void> {
    if (this.keptOverflowed) {
      await this.attempt(() => this.cache.clear());
      this.keptOverflowed = false;
      return;
    }
    const batch = [...this.kept];
    await this.attempt(() =>
      this.cache.mset(batch.map(([key, { value, ttlMs }]) => ({ key, value, ttl: ttlMs }))),
    );
    // A write kept again meanwhile is newer than the one replayed: it stays.
    for (const [key, entry] of batch) if (this.kept.get(key) === entry) this.kept.delete(key);
  }

  private attempt<T>(operation: () => Promise<T>): Promise<T> {
    return this.breaker.run(operation);
  }
}

function memoryCache(logger: Logger): CacheStore {
  const map = new ExpiringMap<unknown>({
    capacity: MEMORY_CAPACITY_BYTES,
    sweepEveryMs: SWEEP_EVERY_MS,
    // Keyv hands a Map store serialized strings.
    weigh: entryBytes,
  });
  const cache = createCache({ stores: [new Keyv({ store: map })] });
  const measure = (fragment: string) => {
    let keys = 0;
    let bytes = 0;
    for (const key of map.keys()) {
      if (!key.includes(fragment)) continue;
      keys += 1;
      bytes += map.weightOf(key) ?? 0;
    }
    return Promise.resolve({ keys, bytes });
  };
  return new GuardedCache(
    'memory',
    cache,
    new DependencyMonitor('cache', logger),
    () => Promise.resolve(),
    measure,
  );
}

const SOCKET = {
  connectTimeout: 1000,
  reconnectStrategy: (retries: number) => Math.min((retries + 1) * 200, 2000),
};

const singleClient = (url: string) =>
  createClient({ url, name: 'messenger-cache', disableOfflineQueue: true, socket: SOCKET });

function redisCache(url: string, logger: Logger): CacheStore {
  const monitor = new DependencyMonitor('cache', logger);
  // Our own client: no offline queue (a command while disconnected fails at once) and reconnection
  // in the background. Errors must surface (throwOnErrors) rather than read as "written" — that is
  // why this is not createKeyvNonBlocking, whose failed SET looks like a successful one, and why
  // cache-manager's nonBlocking (fire-and-forget writes) is off: an invalidation has to be known
  // to have happened before the request that caused it is answered.
  // A redis+cluster:// URL: node-redis's cluster client (keyv then splits multi-key reads by slot;
  // keys read together carry one hash tag, so such a read stays one round trip to one node).
  const cluster = clusterTarget(url);
  const client = cluster
    ? createCluster({
        rootNodes: cluster.nodes.map(({ host, port }) => ({ socket: { host, port } })),
        defaults: {
          name: 'messenger-cache',
          username: cluster.username,
          password: cluster.password,
          disableOfflineQueue: true,
          socket: SOCKET,
        },
      })
    : singleClient(url);
  // What createKeyv does, with a client of either kind (its types take a single client only).
  const adapter = new KeyvRedis(client, { namespace: NAMESPACE, throwOnErrors: true });
  const keyv = new Keyv(adapter, { namespace: NAMESPACE, useKeyPrefix: false, throwOnErrors: true });
  // Once closing, a connection attempt failing under the close is how closing looks, not an outage.
  let closing = false;
  const failed = (error: unknown) => {
    if (!closing) monitor.down(error);
  };
  keyv.on('error', failed);
  // Keyv relays the client's errors today; a listener of our own keeps an unheard 'error' (which
  // would end the process) from depending on that.
  client.on('error', failed);
  const disconnect = async () => {
    closing = true;
    if ('masters' in client) {
      if (client.isOpen) await client.close().catch(() => client.destroy());
    } else if (client.isReady) await client.close().catch(() => client.destroy());
    else if (client.isOpen) client.destroy();
  };
  const pattern = (fragment: string) => `*${fragment.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const measureNode = async (node: ReturnType<typeof singleClient>, fragment: string) => {
    let keys = 0;
    let bytes = 0;
    for await (const batch of node.scanIterator({ MATCH: pattern(fragment), COUNT: 1000 })) {
      for (const key of batch) {
        keys += 1;
        bytes += (await node.memoryUsage(key)) ?? 0;
      }
    }
    return { keys, bytes };
  };
  // On a cluster, every master holds a share of the keys: the sum over the masters.
  const measure = async (fragment: string) => {
    if (!('masters' in client)) return measureNode(client, fragment);
    const totals = { keys: 0, bytes: 0 };
    for (const master of client.masters) {
      const counted = await measureNode(await client.nodeClient(master), fragment);
      totals.keys += counted.keys;
      totals.bytes += counted.bytes;
    }
    return totals;
  };
  const store = new GuardedCache('redis', createCache({ stores: [keyv] }), monitor, disconnect, measure);
  // A single client says 'ready'; the cluster client 'connect' once it knows the slots.
  client.on(cluster ? 'connect' : 'ready', () => {
    monitor.up();
    store.replayKept();
  });
  client.connect().catch(failed);
  return store;
}

export function createCacheStore(redisUrl: string | undefined, logger: Logger): CacheStore {
  return redisUrl ? redisCache(redisUrl, logger) : memoryCache(logger);
}
