import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';
import { publisherFor, quit } from './redis-bus.js';
import { clusterTarget, type RedisClient } from './redis.js';

const CONNECT_TIMEOUT_MS = 1000;
const PUBLISH_TIMEOUT_MS = 500;
const retryDelay = (attempt: number) => Math.min(attempt * 200, 2000);
/** Beyond this many invalidations waiting for the publisher, one "forget everything" replaces them. */
const MAX_PENDING = 1000;
/** The key of a message that voids everything (pending invalidations overflowed). */
export const EVERYTHING = '*';

export interface InvalidationHandlers {
  /** Another instance invalidated `key` of `kind` (`kind` `*`: everything). */
  invalidated(kind: string, key: string): void;
  /**
   * Messages may have been missed (the subscriber lost its connection, or has just subscribed):
   * called whenever `live` changes, either way.
   */
  changed(live: boolean): void;
}

/**
 * Invalidations broadcast between the instances sharing a Redis, on one plain pub/sub channel
 * (PUBLISH on a Redis Cluster reaches the subscribers of every node). The subscriber is one plain
 * connection to one node that never resubscribes by itself: each connection subscribes once, and
 * `live` is true only between that subscription taking hold and the connection's end, so the caller
 * knows exactly when messages may have been missed. A lost connection is replaced (on a cluster by
 * one to the next node).
 */
export class InvalidationChannel {
  readonly monitor: DependencyMonitor;
  private readonly origin = randomUUID();
  private readonly publisher: RedisClient;
  private subscriber: Redis | undefined;
  private liveNow = false;
  private closing = false;
  private node = 0;
  private attempt = 0;
  private retry: NodeJS.Timeout | undefined;
  /** Invalidations a failed publish left behind: published again once the publisher is back. */
  private readonly pending = new Set<string>();

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly handlers: InvalidationHandlers,
  ) {
    this.monitor = new DependencyMonitor('cache invalidations', logger);
    this.publisher = publisherFor(url);
    this.publisher.on('ready', () => this.republish());
    this.connect();
  }

  /** True while this instance hears every invalidation published. */
  get live(): boolean {
    return this.liveNow;
  }

  /**
   * Tells the other instances. Resolves once Redis took the message; otherwise rejects with
   * DependencyUnavailableError, and the message is published again when the publisher is back.
   */
  async publish(kind: string, key: string): Promise<void> {
    const message = `${kind}:${key}`;
    try {
      await this.send(message);
    } catch (error) {
      this.keep(message);
      throw new DependencyUnavailableError(this.monitor.name, { cause: error });
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.retry);
    this.setLive(false);
    await quit(this.publisher);
    if (this.subscriber) await quit(this.subscriber);
  }

  private send(message: string): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('publish timed out')), PUBLISH_TIMEOUT_MS);
    });
    const sent = this.publisher.publish(this.channel, `${this.origin} ${message}`);
    return Promise.race([sent, timeout]).finally(() => clearTimeout(timer));
  }

  private keep(message: string): void {
    if (this.pending.size >= MAX_PENDING) {
      this.pending.clear();
      message = `${EVERYTHING}:${EVERYTHING}`;
    }
    this.pending.add(message);
  }

  private republish(): void {
    for (const message of [...this.pending]) {
      this.pending.delete(message);
      this.send(message).catch(() => this.keep(message));
    }
  }

  private connect(): void {
    if (this.closing) return;
    const options = {
      connectionName: 'messenger-cache-invalidations',
      connectTimeout: CONNECT_TIMEOUT_MS,
      // One connection, one subscription: a lost connection ends, and a new one subscribes again.
      retryStrategy: () => null,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
    };
    const cluster = clusterTarget(this.url);
    let subscriber: Redis;
    if (cluster) {
      const node = cluster.nodes[this.node++ % cluster.nodes.length]!;
      subscriber = new Redis({ ...options, ...node, username: cluster.username, password: cluster.password });
    } else {
      subscriber = new Redis(this.url, options);
    }
    this.subscriber = subscriber;
    subscriber.on('error', (error: Error) => {
      if (!this.closing) this.monitor.down(error);
    });
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => {
          if (this.subscriber !== subscriber || subscriber.status !== 'ready') return;
          this.attempt = 0;
          this.monitor.up();
          this.setLive(true);
        },
        (error: unknown) => {
          this.logger.warn({ err: error }, 'cache invalidations: subscribe failed');
          subscriber.disconnect();
        },
      );
    });
    subscriber.on('message', (_channel: string, raw: string) => this.receive(raw));
    const ended = () => {
      if (this.subscriber !== subscriber) return;
      this.setLive(false);
      if (this.closing) return;
      this.monitor.down(new Error('connection closed'));
      this.subscriber = undefined;
      subscriber.removeAllListeners('message');
      subscriber.disconnect();
      this.retry = setTimeout(() => this.connect(), retryDelay(++this.attempt));
      this.retry.unref();
    };
    subscriber.on('close', ended);
    subscriber.on('end', ended);
  }

  private setLive(live: boolean): void {
    if (this.liveNow === live) return;
    this.liveNow = live;
    this.handlers.changed(live);
  }

  private receive(raw: string): void {
    const space = raw.indexOf(' ');
    if (space < 0 || raw.slice(0, space) === this.origin) return;
    const message = raw.slice(space + 1);
    const colon = message.indexOf(':');
    if (colon < 0) return;
    this.handlers.invalidated(message.slice(0, colon), message.slice(colon + 1));
  }
}
