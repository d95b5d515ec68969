import type { Logger } from './logger.js';
import { isCluster } from './redis.js';
import { LocalBus, type Bus } from './bus-base.js';
import { RedisBus } from './redis-bus.js';
import { ShardedBus } from './sharded-bus.js';

export type { Bus, ResyncScope } from './bus-base.js';

class MemoryBus<T> extends LocalBus<T> implements Bus<T> {
  readonly backend = 'memory' as const;
  readonly perTopic = false;

  publish(_topics: readonly string[], message: T): void {
    this.deliver(message);
  }
  listen(): Promise<void> {
    return Promise.resolve();
  }
  unlisten(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The bus of the instances sharing `redisUrl`, else in-process (one instance). `perTopic` asks for a
 * channel per topic when the URL names a Redis Cluster (sharded pub/sub: each topic's messages pass
 * through the one node that owns its slot, and reach only the instances listening to it); on a
 * single Redis, and when every instance must hear everything, there is one channel.
 */
export function createBus<T>(
  redisUrl: string | undefined,
  channel: string,
  logger: Logger,
  { perTopic = false }: { perTopic?: boolean } = {},
): Bus<T> {
  if (!redisUrl) return new MemoryBus<T>();
  if (perTopic && isCluster(redisUrl)) {
    return new ShardedBus<T>(redisUrl, channel, logger);
  }
  return new RedisBus<T>(redisUrl, channel, logger);
}
