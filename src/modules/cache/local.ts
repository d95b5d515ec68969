import type { Logger } from '../../infra/logger.js';
import { InvalidationChannel } from '../../infra/invalidation-channel.js';

/** Where a LocalCache may serve from, and since when nothing was invalidated. */
interface Guard {
  /** False while invalidations may be missed: nothing is served nor kept. */
  readonly serving: boolean;
  /** Moves on with every invalidation this instance hears of (its own included) and every flush. */
  readonly epoch: number;
}

/**
 * A bounded in-process map in front of a shared cache: at most `capacity` entries (the least
 * recently used go first), each for at most `ttlMs`. It answers only while its guard serves, and
 * keeps a value only when no invalidation happened since the read that found it began (`since`,
 * the epoch taken before that read): a value read before an invalidation is never put back after it.
 */
export class LocalCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  /** Answers given from memory (tests, benchmarks). */
  hits = 0;

  constructor(
    private readonly guard: Guard,
    readonly capacity: number,
    readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    if (!this.guard.serving) return undefined;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= Date.now()) return undefined;
    // Re-inserted last: insertion order is the eviction order.
    this.entries.set(key, entry);
    this.hits += 1;
    return entry.value;
  }

  /** Keeps `value`, read by a read that began at epoch `since`, unless something was invalidated since. */
  set(key: string, value: V, since: number, ttlMs = this.ttlMs): void {
    if (!this.guard.serving || this.guard.epoch !== since || ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: Date.now() + Math.min(ttlMs, this.ttlMs) });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The kinds of entries invalidated on the channel. */
export type LocalKind = 'session' | 'member';

/**
 * The in-process layer of sessions and memberships with REDIS_URL: what this instance read from
 * the shared cache, kept for a few seconds. An invalidation (logout, leave) is applied here at once
 * and published on a Redis channel every instance subscribes to. While this instance's subscription
 * is not in place (start, outage, reconnect) the layer serves and keeps nothing, and it is emptied
 * whenever the subscription starts or ends, since messages published meanwhile were lost.
 */
export class LocalLayer implements Guard {
  readonly sessions: LocalCache<unknown>;
  readonly memberships: LocalCache<true>;
  private epochNow = 0;
  private readonly channel: InvalidationChannel;

  constructor(redisUrl: string, logger: Logger, options: { entries: number; ttlMs: number }) {
    this.sessions = new LocalCache(this, options.entries, options.ttlMs);
    this.memberships = new LocalCache(this, options.entries, options.ttlMs);
    this.channel = new InvalidationChannel(redisUrl, 'messenger:cache:invalidations', logger, {
      invalidated: (kind, key) => this.apply(kind, key),
      changed: () => this.flush(),
    });
  }

  get serving(): boolean {
    return this.channel.live;
  }

  get epoch(): number {
    return this.epochNow;
  }

  get monitor() {
    return this.channel.monitor;
  }

  /**
   * Forgets `key` here at once, then tells every other instance; rejects (DependencyUnavailableError)
   * when the message could not be published (it is published again once Redis is back). Called
   * after the shared cache took the invalidation, so an instance that hears of it reads the new state.
   */
  async invalidate(kind: LocalKind, key: string): Promise<void> {
    this.apply(kind, key);
    await this.channel.publish(kind, key);
  }

  close(): Promise<void> {
    return this.channel.close();
  }

  private apply(kind: string, key: string): void {
    this.epochNow += 1;
    if (kind === 'session') this.sessions.delete(key);
    else if (kind === 'member') this.memberships.delete(key);
    // EVERYTHING, or a kind this release does not know: nothing kept can be trusted.
    else this.flush();
  }

  private flush(): void {
    this.epochNow += 1;
    this.sessions.clear();
    this.memberships.clear();
  }
}
