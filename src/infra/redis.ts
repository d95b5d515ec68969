import { Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';

export type { Redis };

export interface RedisConnection {
  client: Redis;
  monitor: DependencyMonitor;
  close(): Promise<void>;
}

/**
 * An ioredis client that fails fast instead of queueing while Redis is away (no offline queue, one
 * try per command, a command timeout), reconnects by itself, and logs the outage once each way.
 */
export function connectRedis(url: string, name: string, logger: Logger): RedisConnection {
  const monitor = new DependencyMonitor(name, logger);
  const client = new Redis(url, {
    connectionName: `messenger-${name}`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 500,
    connectTimeout: 1000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  let closing = false;
  client.on('ready', () => monitor.up());
  client.on('error', (error) => {
    if (!closing) monitor.down(error);
  });
  client.on('end', () => {
    if (!closing) monitor.down(new Error('connection closed'));
  });
  return {
    client,
    monitor,
    async close() {
      closing = true;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
