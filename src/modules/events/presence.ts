import { randomUUID } from 'node:crypto';
import type { Logger } from '../../infra/logger.js';
import { connectRedis, type RedisConnection } from '../../infra/redis.js';

/**
 * Who has at least one open stream on any instance. Each instance keeps, per user with streams open
 * on it, an entry that expires unless refreshed (a crashed instance's users go offline by
 * themselves): a sorted set per user in Redis (instance → expiry), or memory for one instance.
 */
export interface PresenceStore {
  /** Marks the users online here until the entries' time to live passes. */
  refresh(userIds: string[]): Promise<void>;
  /** This instance has no stream of the user any more. */
  remove(userId: string): Promise<void>;
  /** The ones of `userIds` online on any instance. */
  online(userIds: string[]): Promise<Set<string>>;
  close(): Promise<void>;
}

export function createPresenceStore(
  redisUrl: string | undefined,
  ttlSeconds: number,
  logger: Logger,
): PresenceStore {
  if (redisUrl) {
    const instance = randomUUID();
    const redis: RedisConnection = connectRedis(redisUrl, 'presence', logger);
    const key = (userId: string) => `messenger:presence:${userId}`;
    return {
      // One command per user rather than a pipeline: on a Redis Cluster the users' keys live on
      // different nodes, and a pipeline must stay on one.
      async refresh(userIds) {
        const expiresAt = Date.now() + ttlSeconds * 1000;
        await Promise.all(
          userIds.map((userId) =>
            redis.client
              .multi()
              .zadd(key(userId), expiresAt, instance)
              .pexpire(key(userId), ttlSeconds * 1000)
              .exec(),
          ),
        );
      },
      async remove(userId) {
        await redis.client.zrem(key(userId), instance);
      },
      async online(userIds) {
        const now = Date.now();
        const counts = await Promise.all(
          userIds.map((userId) => redis.client.zcount(key(userId), now, '+inf')),
        );
        return new Set(userIds.filter((_, index) => counts[index]! > 0));
      },
      close: () => redis.close(),
    };
  }
  const expiry = new Map<string, number>();
  return {
    refresh(userIds) {
      const expiresAt = Date.now() + ttlSeconds * 1000;
      for (const userId of userIds) expiry.set(userId, expiresAt);
      return Promise.resolve();
    },
    remove(userId) {
      expiry.delete(userId);
      return Promise.resolve();
    },
    online(userIds) {
      const now = Date.now();
      return Promise.resolve(new Set(userIds.filter((userId) => (expiry.get(userId) ?? 0) > now)));
    },
    close: () => Promise.resolve(),
  };
}
