import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';
import { DependencyMonitor } from './monitor.js';

import { clusterTarget } from './redis-url.js';

export type { Redis, Cluster };
export { clusterTarget, isCluster, type ClusterTarget } from './redis-url.js';

/** A single Redis or a Redis Cluster: the same commands, routed by key slot in a cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisConnection {
  client: RedisClient;
  monitor: DependencyMonitor;
  close(): Promise<void>;
}

/**
 * A hash tag: keys that hold the same `{tag}` live in the same cluster slot, so one MGET, MULTI or
 * script may use them together. On a single Redis it changes nothing but the key's text.
 */
export const hashTag = (tag: string) => `{${tag}}`;

const COMMAND_TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 1000;
const retryDelay = (attempt: number) => Math.min(attempt * 200, 2000);

/** What a connection may add to the defaults of connectRedis. */
export interface ConnectionOptions {
  /** SSUBSCRIBE on a cluster. */
  sharded?: boolean;
  /** Commands issued in one turn of the event loop are written together (one round trip per node). */
  autoPipelining?: boolean;
}

/** A client on `url`, failing fast while Redis is away. */
function createClient(url: string, name: string, extra: ConnectionOptions = {}): RedisClient {
  const common = {
    connectionName: `messenger-${name}`,
    enableAutoPipelining: extra.autoPipelining ?? false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
  };
  const cluster = clusterTarget(url);
  if (!cluster) return new Redis(url, { ...common, retryStrategy: retryDelay });
  return new Cluster(cluster.nodes, {
    // Until the slot map is known a command has nowhere to go: it waits for it (bounded by the
    // command timeout) instead of failing while the client is connecting.
    enableOfflineQueue: true,
    clusterRetryStrategy: retryDelay,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    shardedSubscribers: extra.sharded ?? false,
    enableAutoPipelining: extra.autoPipelining ?? false,
    redisOptions: { ...common, username: cluster.username, password: cluster.password },
  });
}

/**
 * A client with the caller's own options on `url`: a Cluster client for a redis+cluster:// URL (plain
 * PUBLISH/SUBSCRIBE work across a cluster, every node relaying every message).
 */
export function clientFor(url: string, options: RedisOptions): RedisClient {
  const cluster = clusterTarget(url);
  if (!cluster) return new Redis(url, options);
  return new Cluster(cluster.nodes, {
    enableOfflineQueue: options.enableOfflineQueue ?? true,
    clusterRetryStrategy: retryDelay,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    redisOptions: { ...options, username: cluster.username, password: cluster.password },
  });
}

/**
 * An ioredis client (a Cluster client for a redis+cluster:// URL) that fails fast instead of
 * queueing while Redis is away (no offline queue, one try per command, a command timeout),
 * reconnects by itself, and logs the outage once each way.
 */
export function connectRedis(
  url: string,
  name: string,
  logger: Logger,
  options: ConnectionOptions = {},
): RedisConnection {
  const monitor = new DependencyMonitor(name, logger);
  const client = createClient(url, name, options);
  let closing = false;
  client.on('ready', () => monitor.up());
  client.on('error', (error: unknown) => {
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

/**
 * A client for subscriptions (a connection in subscriber mode takes no other command). On a cluster
 * it subscribes with sharded pub/sub: SSUBSCRIBE (the 'smessage' event) goes to the master that
 * owns the channel's slot, so a channel named with a hash tag (`events:{<chatId>}`) passes through
 * one node only, and SPUBLISH on a normal client reaches it there. ioredis keeps one subscriber
 * connection per master, made when first needed; it replaces one it lost and subscribes its channels
 * again, then emits 'subscribersReady' (messages published meanwhile are lost: the caller resyncs).
 */
export function subscriber(url: string, name: string): RedisClient {
  return createClient(url, `${name}-sub`, { sharded: true });
}
