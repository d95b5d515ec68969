import type { Cluster } from 'ioredis';
import { Envelopes, LocalBus, type Bus } from './bus-base.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { publisherFor, quit } from './redis-bus.js';
import { hashTag, subscriber } from './redis.js';

/** How long `listen` waits for the node to confirm a subscription before leaving it to a resync. */
const CONFIRM_WAIT_MS = 1000;
/** How soon subscriptions left unconfirmed are tried again. */
const RETRY_MS = 1000;

const settled = (work: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });

/**
 * Sharded pub/sub on a Redis Cluster (Redis 7): one channel per topic, `<channel>:{<topic>}`, so a
 * topic's messages pass through the one master that owns its slot and reach only the instances
 * listening to it, where plain PUBLISH would carry every message through every node. Publishing
 * uses SPUBLISH on a normal connection; listening, SSUBSCRIBE on the master's subscriber connection.
 *
 * When a subscriber connection is lost, ioredis makes a new one and subscribes again; messages
 * published meanwhile are gone. Every topic is then subscribed afresh here, each confirmed by its
 * node, and only then reported to `onResync`: whatever was published before the confirmation was
 * committed before it, so a catch-up from storage that starts after it misses nothing.
 */
export class ShardedBus<T> extends LocalBus<T> implements Bus<T> {
  readonly backend = 'redis' as const;
  readonly perTopic = true;
  readonly monitor: DependencyMonitor;
  private readonly envelopes = new Envelopes<T>();
  private readonly publisher: Cluster;
  private readonly subscriber: Cluster;
  /** Topics listened to, and those whose subscription may have lapsed and is not confirmed again. */
  private readonly topics = new Set<string>();
  private readonly unsure = new Set<string>();
  /** A subscriber connection was lost: every topic is unsure at the next recovery. */
  private lost = false;
  private recovery: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    url: string,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {
    super();
    this.monitor = new DependencyMonitor('event bus', logger);
    this.publisher = publisherFor(url) as Cluster;
    this.subscriber = subscriber(url, 'messenger-bus') as Cluster;
    const lost = (error: unknown) => {
      if (this.closing) return;
      this.lost = true;
      this.monitor.down(error);
    };
    this.subscriber.on('error', lost);
    this.subscriber.on('-node', () => lost(new Error('subscriber connection lost')));
    this.subscriber.on('close', () => lost(new Error('connection closed')));
    this.subscriber.on('subscribersReady', () => this.recover());
    this.subscriber.on('smessage', (_channel: string, raw: string) => {
      const message = this.envelopes.unwrap(raw);
      if (message !== undefined) this.deliver(message);
    });
  }

  private channelOf(topic: string): string {
    return `${this.channel}:${hashTag(topic)}`;
  }

  publish(topics: readonly string[], message: T): void {
    this.deliver(message);
    const raw = this.envelopes.wrap(message);
    for (const topic of topics) {
      this.publisher.spublish(this.channelOf(topic), raw).catch((error: unknown) => {
        this.logger.debug({ err: error }, 'event bus publish dropped');
      });
    }
  }

  async listen(topic: string): Promise<void> {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    if (!(await settled(this.subscriber.ssubscribe(this.channelOf(topic)), CONFIRM_WAIT_MS))) {
      this.doubt([topic]);
    }
  }

  unlisten(topic: string): void {
    if (!this.topics.delete(topic)) return;
    this.unsure.delete(topic);
    this.subscriber.sunsubscribe(this.channelOf(topic)).catch(() => undefined);
  }

  private doubt(topics: string[]): void {
    for (const topic of topics) if (this.topics.has(topic)) this.unsure.add(topic);
    if (this.unsure.size === 0 || this.retry || this.closing) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.recover();
    }, RETRY_MS);
    this.retry.unref();
  }

  /** Subscribes again to the topics that may have lapsed, then reports the confirmed ones. */
  private recover(): void {
    this.recovery = this.recovery
      .then(async () => {
        if (this.closing) return;
        if (this.lost) for (const topic of this.topics) this.unsure.add(topic);
        this.lost = false;
        const topics = [...this.unsure];
        this.unsure.clear();
        // SUNSUBSCRIBE first: ioredis would otherwise list the channel twice for its next resubscription.
        const confirmed = await Promise.all(
          topics.map((topic) => {
            const channel = this.channelOf(topic);
            void this.subscriber.sunsubscribe(channel).catch(() => undefined);
            return settled(this.subscriber.ssubscribe(channel), CONFIRM_WAIT_MS);
          }),
        );
        const heard = topics.filter((topic, index) => confirmed[index] && this.topics.has(topic));
        // A topic left while it was subscribed again is left again.
        for (const topic of topics) {
          if (!this.topics.has(topic))
            this.subscriber.sunsubscribe(this.channelOf(topic)).catch(() => undefined);
        }
        this.doubt(topics.filter((_, index) => !confirmed[index]));
        // `lost` is set again by a disconnect while the subscriptions above were awaited.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (this.unsure.size === 0 && !this.lost) this.monitor.up();
        if (heard.length > 0) this.resync(heard);
      })
      .catch((error: unknown) => this.logger.warn({ err: error }, 'event bus resubscription failed'));
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.retry);
    await quit(this.publisher);
    await quit(this.subscriber);
  }
}
