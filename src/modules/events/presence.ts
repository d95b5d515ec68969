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
      async refresh(userIds) {
        if (userIds.length === 0) return;
        const expiresAt = Date.now() + ttlSeconds * 1000;
        const pipeline = redis.client.pipeline();
        for (const userId of userIds) {
          pipeline.zadd(key(userId), expiresAt, instance);
          pipeline.pexpire(key(userId), ttlSeconds * 1000);
        }
        await pipeline.exec();
      },
      async remove(userId) {
        await redis.client.zrem(key(userId), instance);
      },
      async online(userIds) {
        if (userIds.length === 0) return new Set();
        const now = Date.now();
        const pipeline = redis.client.pipeline();
        for (const userId of userIds) pipeline.zcount(key(userId), now, '+inf');
        const results = (await pipeline.exec()) ?? [];
        return new Set(userIds.filter((_, index) => Number(results[index]?.[1] ?? 0) > 0));
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
