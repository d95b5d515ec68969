import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { Breaker } from './breaker.js';
import { MemoryChangeLogs, redisChangeLogs, type Changes, type ChangeLogStore } from './change-log.js';
import { connectRedis, type RedisClient } from './redis.js';

/**
 * A shared key-value cache: Redis when REDIS_URL is set (every instance sees the same entries), else
 * this process's memory. Every operation answers fast or throws DependencyUnavailableError; callers go on
 * without the cache then.
 */
export interface CacheStore {
  readonly backend: 'memory' | 'redis';
  readonly monitor: DependencyMonitor;
  /**
   * The values of `keys` (undefined where absent), read in one round trip, so all or none. Keys read
   * together carry one hash tag (one cluster slot). A value written as a Buffer is read back as one.
   */
  read(keys: string[]): Promise<unknown[]>;
  /** A Buffer is kept as its bytes (read back as they are); anything else as JSON. */
  write(key: string, value: unknown, ttlMs: number): Promise<void>;
  /**
   * A write that must not be lost (an invalidation). Never throws: when the store cannot take it now,
   * it is kept and written before this instance uses the store again.
   */
  writeSurely(key: string, value: unknown, ttlMs: number): Promise<void>;
  /**
   * Appends `member` to the change log named `log` (which holds a hash tag), keeping the latest
   * position of its `keep` most recent members (change-log.ts).
   */
  append(log: string, member: string, keep: number): Promise<void>;
  /** The log's position and what was appended to it after `after` (at most `limit` members). */
  changesSince(log: string, after: number, limit: number, keep: number): Promise<Changes>;
  /** How many entries whose key contains `fragment` are held, and their bytes (tests, benchmarks). */
  held(fragment: string): Promise<{ keys: number; bytes: number }>;
  close(): Promise<void>;
}

export type { Changes };

/** Beyond this many invalidations kept during an outage, the whole cache is cleared on recovery. */
const MAX_KEPT_WRITES = 10_000;
/** What the in-memory store may hold, in bytes of string storage (V8 keeps at most 2 bytes a char). */
export const MEMORY_CAPACITY_BYTES = 64 * 1024 * 1024;
/** Per-entry bookkeeping (map slots, expiry record) counted against the capacity. */
const ENTRY_OVERHEAD_BYTES = 96;

/** An upper bound of the bytes an in-memory entry costs: a key and a serialized value. */
export function entryBytes(key: string, value: unknown): number {
  const valueBytes =
    typeof value === 'string' ? 2 * value.length : Buffer.isBuffer(value) ? value.length : 16;
  return ENTRY_OVERHEAD_BYTES + 2 * key.length + valueBytes;
}
const SWEEP_EVERY_MS = 10_000;
/** Every key of the cache in Redis starts with this (the prefix earlier releases wrote too). */
const PREFIX = 'messenger:cache::';

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

  /** With `ttlMs` the entry counts as expired that long after; without, `expiresAt` says. */
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

/**
 * How values sit in the store. Bytes (a Buffer) are kept as they are behind a zero byte, so that a
 * page read from Redis can be sent without being decoded; anything else as the JSON envelope
 * `{"value": ...}` earlier releases wrote, so instances of both read the same sessions, markers and
 * generations during a rolling deploy (an entry one cannot read is a miss to it, never an error).
 */
const RAW = 0;

function encode(value: unknown): string | Buffer {
  if (Buffer.isBuffer(value)) return Buffer.concat([Buffer.of(RAW), value]);
  return JSON.stringify({ value });
}

function decode(stored: string | Buffer | null | undefined): unknown {
  if (stored === null || stored === undefined) return undefined;
  if (typeof stored !== 'string') {
    if (stored[0] === RAW) return stored.subarray(1);
    stored = stored.toString();
  }
  try {
    return (JSON.parse(stored) as { value?: unknown }).value;
  } catch {
    return undefined;
  }
}

/** Where a GuardedCache keeps its entries: this process's memory or Redis. */
interface Backend {
  logs: ChangeLogStore;
  get(keys: string[]): Promise<(string | Buffer | null | undefined)[]>;
  set(key: string, stored: string | Buffer, ttlMs: number): Promise<void>;
  /** Drops every entry of the cache. */
  clear(): Promise<void>;
  measure(fragment: string): Promise<{ keys: number; bytes: number }>;
  close(): Promise<void>;
}

/** A backend with a circuit breaker in front, and invalidations kept while it is away. */
class GuardedCache implements CacheStore {
  private readonly breaker: Breaker;
  private readonly kept = new Map<string, { value: unknown; ttlMs: number }>();
  private keptOverflowed = false;
  private replaying: Promise<void> | undefined;

  constructor(
    readonly backend: 'memory' | 'redis',
    private readonly store: Backend,
    readonly monitor: DependencyMonitor,
  ) {
    this.breaker = new Breaker(monitor);
  }

  async read(keys: string[]): Promise<unknown[]> {
    await this.admit();
    const stored = await this.attempt(() => this.store.get(keys));
    return stored.map(decode);
  }

  async write(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.admit();
    await this.attempt(() => this.store.set(key, encode(value), ttlMs));
  }

  async append(log: string, member: string, keep: number): Promise<void> {
    await this.admit();
    await this.attempt(() => this.store.logs.append(log, member, keep));
  }

  async changesSince(log: string, after: number, limit: number, keep: number): Promise<Changes> {
    await this.admit();
    return this.attempt(() => this.store.logs.changesSince(log, after, limit, keep));
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

  close(): Promise<void> {
    return this.store.close();
  }

  held(fragment: string): Promise<{ keys: number; bytes: number }> {
    return this.store.measure(fragment);
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
      await this.attempt(() => this.store.clear());
      this.keptOverflowed = false;
      return;
    }
    const batch = [...this.kept];
    await this.attempt(() =>
      Promise.all(batch.map(([key, { value, ttlMs }]) => this.store.set(key, encode(value), ttlMs))),
    );
    // A write kept again meanwhile is newer than the one replayed: it stays.
    for (const [key, entry] of batch) if (this.kept.get(key) === entry) this.kept.delete(key);
  }

  private attempt<T>(operation: () => Promise<T>): Promise<T> {
    return this.breaker.run(operation);
  }
}

interface MemoryEntry {
  stored: string | Buffer;
  expiresAt: number;
}

function memoryCache(logger: Logger): CacheStore {
  const map = new ExpiringMap<MemoryEntry>({
    capacity: MEMORY_CAPACITY_BYTES,
    sweepEveryMs: SWEEP_EVERY_MS,
    weigh: (key, entry) => entryBytes(key, entry.stored),
  });
  const get = (key: string) => {
    const entry = map.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      map.delete(key);
      return undefined;
    }
    return entry?.stored;
  };
  const logs = new MemoryChangeLogs();
  const backend: Backend = {
    logs,
    get: (keys) => Promise.resolve(keys.map(get)),
    set(key, stored, ttlMs) {
      map.set(key, { stored, expiresAt: Date.now() + ttlMs }, ttlMs);
      return Promise.resolve();
    },
    clear() {
      map.clear();
      logs.clear();
      return Promise.resolve();
    },
    measure(fragment) {
      let keys = 0;
      let bytes = 0;
      for (const key of map.keys()) {
        if (!key.includes(fragment) || get(key) === undefined) continue;
        keys += 1;
        bytes += map.weightOf(key) ?? 0;
      }
      return Promise.resolve({ keys, bytes });
    },
    close: () => Promise.resolve(),
  };
  return new GuardedCache('memory', backend, new DependencyMonitor('cache', logger));
}

/** The masters of `client`: itself, or every master of a cluster. */
function mastersOf(client: RedisClient) {
  return 'nodes' in client ? client.nodes('master') : [client];
}

/** Keys of the cache on one Redis node whose name contains `fragment`, a batch at a time. */
async function* scan(node: ReturnType<typeof mastersOf>[number], fragment: string) {
  const pattern = `${PREFIX}*${fragment.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}

function redisCache(url: string, logger: Logger): CacheStore {
  // ioredis without an offline queue (a command while disconnected fails at once), reconnecting in
  // the background; commands issued in the same turn of the event loop (one request's reads,
  // several requests' reads) go out together. Errors surface: an invalidation has to be known to
  // have happened before the request that caused it is answered. Keys read together carry one hash
  // tag, so such a read is one command to one node on a cluster too.
  const redis = connectRedis(url, 'cache', logger, { autoPipelining: true });
  const { client } = redis;
  const backend: Backend = {
    logs: redisChangeLogs(client, PREFIX),
    async get(keys) {
      const [only, ...more] = keys.map((key) => PREFIX + key);
      if (only !== undefined && more.length === 0) return [await client.getBuffer(only)];
      return client.mgetBuffer(keys.map((key) => PREFIX + key));
    },
    async set(key, stored, ttlMs) {
      await client.set(PREFIX + key, stored, 'PX', Math.max(1, Math.ceil(ttlMs)));
    },
    async clear() {
      for (const node of mastersOf(client)) for await (const keys of scan(node, '')) await node.unlink(keys);
    },
    async measure(fragment) {
      // On a cluster every master holds a share of the keys: the sum over the masters.
      const totals = { keys: 0, bytes: 0 };
      for (const node of mastersOf(client)) {
        for await (const keys of scan(node, fragment)) {
          for (const key of keys) {
            totals.keys += 1;
            totals.bytes += (await node.memory('USAGE', key)) ?? 0;
          }
        }
      }
      return totals;
    },
    close: () => redis.close(),
  };
  const store = new GuardedCache('redis', backend, redis.monitor);
  client.on('ready', () => store.replayKept());
  return store;
}

export function createCacheStore(redisUrl: string | undefined, logger: Logger): CacheStore {
  return redisUrl ? redisCache(redisUrl, logger) : memoryCache(logger);
}
