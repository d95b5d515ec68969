import assert from 'node:assert/strict';
import calculateSlot from 'cluster-key-slot';
import { Redis, type Cluster } from 'ioredis';

/** The master (host:port) that owns a key's (or sharded channel's) slot, from the cluster's slot table. */
export async function ownerOf(cluster: Cluster, key: string): Promise<string> {
  const slot = calculateSlot(key);
  const ranges = (await cluster.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  assert.ok(range, `slot ${slot} has an owner`);
  return `${range[2][0]}:${range[2][1]}`;
}

/** Runs `work` with a plain connection to one node of the cluster (not the cluster client). */
export async function onNode<T>(node: string, work: (client: Redis) => Promise<T>): Promise<T> {
  const [host, port] = node.split(':');
  const client = new Redis({ host, port: Number(port), lazyConnect: true });
  await client.connect();
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

/** Keys on one node (not the cluster) that match `pattern`. */
export const keysOn = (node: string, pattern: string): Promise<string[]> =>
  onNode(node, (client) => client.keys(pattern));
