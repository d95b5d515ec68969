import { randomUUID } from 'node:crypto';
import { clientFor, type RedisClient } from './redis.js';
import type { Logger } from './logger.js';
import type { Reachability } from './metrics.js';
import { DependencyMonitor } from './monitor.js';

/**
 * Publish/subscribe between the instances of the API: every message published on any instance is
 * handed to the handler of every instance, the publisher's own first. Delivery is best effort
 * (Redis pub/sub drops what is sent while a subscriber is away): `onResync` hears when this
 * instance may have missed messages, so that its users can catch up from durable storage.
 */
export interface Bus<T> {
  readonly backend: 'memory' | 'redis';
  publish(message: T): void;
  subscribe(handler: (message: T) => void): void;
  /** Called after this instance's subscription came back from an outage (messages may be lost). */
  onResync(handler: () => void): void;
  readonly monitor?: Reachability;
  close(): Promise<void>;
}

class MemoryBus<T> implements Bus<T> {
  readonly backend = 'memory' as const;
  private readonly handlers: ((message: T) => void)[] = [];

  publish(message: T): void {
    for (const handler of this.handlers) handler(message);
  }
  subscribe(handler: (message: T) => void): void {
    this.handlers.push(handler);
  }
  onResync(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

interface Envelope<T> {
  origin: string;
  message: T;
}

/**
 * Redis pub/sub on one channel, over two connections (a subscribed connection can send nothing
 * else). The instance's own messages are delivered in-process at once, so its own streams never
 * wait for Redis nor lose them during an outage.
 */
class RedisBus<T> implements Bus<T> {
  readonly backend = 'redis' as const;
  readonly monitor: DependencyMonitor;
  private readonly origin = randomUUID();
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly handlers: ((message: T) => void)[] = [];
  private readonly resyncs: (() => void)[] = [];
  private closing = false;
  private lost = false;

  constructor(
    url: string,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {
    this.monitor = new DependencyMonitor('event bus', logger);
    const options = {
      connectTimeout: 1000,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
    // A publish during an outage is dropped at once rather than queued: readers catch up from storage.
    this.publisher = clientFor(url, {
      ...options,
      connectionName: 'messenger-bus-pub',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    this.subscriber = clientFor(url, {
      ...options,
      connectionName: 'messenger-bus-sub',
      autoResubscribe: false,
    });
    this.publisher.on('error', () => {});
    this.subscriber.on('error', (error: Error) => {
      if (!this.closing) this.monitor.down(error);
    });
    this.subscriber.on('close', () => {
      if (this.closing) return;
      this.lost = true;
      this.monitor.down(new Error('connection closed'));
    });
    // Subscribed first, then caught up: whatever was published before the subscription took hold
    // was committed before, so storage has it.
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.channel).then(
        () => {
          this.monitor.up();
          if (this.lost) {
            this.lost = false;
            for (const resync of this.resyncs) resync();
          }
        },
        (error: unknown) => this.logger.warn({ err: error }, 'event bus subscribe failed'),
      );
    });
    this.subscriber.on('message', (_channel: string, raw: string) => {
      let envelope: Envelope<T>;
      try {
        envelope = JSON.parse(raw) as Envelope<T>;
      } catch {
        return;
      }
      if (envelope.origin === this.origin) return;
      for (const handler of this.handlers) handler(envelope.message);
    });
  }

  publish(message: T): void {
    for (const handler of this.handlers) handler(message);
    const envelope: Envelope<T> = { origin: this.origin, message };
    this.publisher.publish(this.channel, JSON.stringify(envelope)).catch((error: unknown) => {
      this.logger.debug({ err: error }, 'event bus publish dropped');
    });
  }
  subscribe(handler: (message: T) => void): void {
    this.handlers.push(handler);
  }
  onResync(handler: () => void): void {
    this.resyncs.push(handler);
  }
  async close(): Promise<void> {
    this.closing = true;
    for (const client of [this.publisher, this.subscriber]) {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }
  }
}

/** Redis pub/sub with `redisUrl`, else in-process (one instance). */
export function createBus<T>(redisUrl: string | undefined, channel: string, logger: Logger): Bus<T> {
  return redisUrl ? new RedisBus<T>(redisUrl, channel, logger) : new MemoryBus<T>();
}
