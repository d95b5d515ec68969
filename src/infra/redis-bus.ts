import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { clientFor, type RedisClient } from './redis.js';
import { Envelopes, LocalBus, type Bus } from './bus-base.js';

const RETRY = { connectTimeout: 1000, retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000) };

/** The publishing connection: a publish during an outage is dropped at once rather than queued. */
export function publisherFor(url: string): RedisClient {
  const publisher = clientFor(url, {
    ...RETRY,
    connectionName: 'messenger-bus-pub',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  });
  publisher.on('error', () => {});
  return publisher;
}

/** Ends a connection politely, or at once when it cannot answer. */
export async function quit(client: RedisClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/**
 * Redis pub/sub on one channel, over two connections (a subscribed connection can send nothing
 * else): every instance hears every message. The instance's own messages are delivered in-process
 * at once, so its own readers never wait for Redis nor lose them during an outage.
 */
export class RedisBus<T> extends LocalBus<T> implements Bus<T> {
  readonly backend = 'redis' as const;
  readonly perTopic = false;
  readonly monitor: DependencyMonitor;
  private readonly envelopes = new Envelopes<T>();
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private closing = false;

  constructor(
    url: string,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {
    super();
    this.monitor = new DependencyMonitor('event bus', logger);
    this.publisher = publisherFor(url);
    this.subscriber = clientFor(url, {
      ...RETRY,
      connectionName: 'messenger-bus-sub',
      autoResubscribe: false,
    });
    this.subscriber.on('error', (error: Error) => {
      if (!this.closing) this.monitor.down(error);
    });
    this.subscriber.on('close', () => {
      if (!this.closing) this.monitor.down(new Error('connection closed'));
    });
    // Subscribed first, then caught up: whatever was published before the subscription took hold
    // was committed before, so storage has it (at the first start too: readers may be open already).
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.channel).then(
        () => {
          this.monitor.up();
          this.resync('all');
        },
        (error: unknown) => this.logger.warn({ err: error }, 'event bus subscribe failed'),
      );
    });
    this.subscriber.on('message', (_channel: string, raw: string) => {
      const message = this.envelopes.unwrap(raw);
      if (message !== undefined) this.deliver(message);
    });
  }

  publish(_topics: readonly string[], message: T): void {
    this.deliver(message);
    this.publisher.publish(this.channel, this.envelopes.wrap(message)).catch((error: unknown) => {
      this.logger.debug({ err: error }, 'event bus publish dropped');
    });
  }
  listen(): Promise<void> {
    return Promise.resolve();
  }
  unlisten(): void {}
  async close(): Promise<void> {
    this.closing = true;
    await quit(this.publisher);
    await quit(this.subscriber);
  }
}
