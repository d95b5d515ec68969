import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib from 'amqplib';
import { Cluster, Redis } from 'ioredis';
import { clusterTarget, type RedisClient } from '../../src/infra/redis.js';
import type { TestApp } from './app.js';
import type { User } from './fixtures.js';

/** A queue name of its own, so consumers of other suites (or runs) never take these jobs. */
export const freshQueueName = () => `test.search.${randomUUID().slice(0, 8)}`;

export interface TaskStatus {
  status: 'WAITING' | 'IN_PROCESS' | 'SUCCESS' | 'FAILED';
  total?: number;
  error?: string;
}

/** Waits (long polls of a few seconds) until the task is SUCCESS or FAILED; returns its status. */
export async function finished(
  app: TestApp,
  user: User,
  taskId: string,
  timeoutMs = 15_000,
): Promise<TaskStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const wait = Math.max(0, Math.min(5, Math.floor((deadline - Date.now()) / 1000)));
    const res = await app.api
      .get(`/v1/chats/search/status/${taskId}?wait=${wait}`)
      .set(user.auth)
      .expect(200);
    const body = res.body as TaskStatus;
    if (body.status === 'SUCCESS' || body.status === 'FAILED') return body;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${body.status} after ${timeoutMs} ms`);
    if (wait === 0) await sleep(25);
  }
}

/** Creates a search task (201) and returns its id. */
export async function createTask(app: TestApp, user: User, body: Record<string, unknown>): Promise<string> {
  const res = await app.api.post('/v1/chats/search').set(user.auth).send(body).expect(201);
  return res.body.task_id as string;
}

/** Measures `request`, records `label: N ms` in `into`, and checks it took less than `limitMs`. */
export async function timed<T>(
  into: string[],
  label: string,
  limitMs: number,
  request: () => PromiseLike<T>,
): Promise<T> {
  const started = performance.now();
  const result = await request();
  const ms = performance.now() - started;
  into.push(`${label}: ${ms.toFixed(1)} ms`);
  assert.ok(ms < limitMs, `${label} took ${ms.toFixed(0)} ms (limit ${limitMs} ms)`);
  return result;
}

/** A plain Redis client on REDIS_URL, to look at what the result store wrote. */
export function redisInspector(url: string): RedisClient {
  const cluster = clusterTarget(url);
  if (cluster) return new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  return new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
}

/** The user's id, which tags the Redis keys of the user's tasks. */
export async function userIdOf(app: TestApp, user: User): Promise<string> {
  const row = await app.service.db
    .knex<{ id: string; name: string }>('users')
    .where({ name: user.userName })
    .first('id');
  assert.ok(row, `user ${user.userName} not found`);
  return row.id;
}

// A task's keys carry its owner's hash tag (one cluster slot for an owner's tasks and sets).
export const taskKey = (ownerId: string, taskId: string) => `search:{${ownerId}}:task:${taskId}`;
export const hitsKey = (ownerId: string, taskId: string) => `search:{${ownerId}}:hits:${taskId}`;

/** The stored results of a task, as Redis holds them (every row, in order): message ids. */
export async function storedHits(
  redis: RedisClient,
  ownerId: string,
  taskId: string,
): Promise<{ messageId: string }[]> {
  const rows = await redis.lrange(hitsKey(ownerId, taskId), 0, -1);
  return rows.map((row) => ({ messageId: JSON.parse(row) as string }));
}

/** Direct access to the broker with amqplib, around the app's own adapter. */
export class Broker {
  private constructor(
    private readonly model: amqplib.ChannelModel,
    private readonly channel: amqplib.Channel,
  ) {}

  static async connect(url: string): Promise<Broker> {
    const model = await amqplib.connect(url);
    // A failing passive check (queue gone) closes the channel; errors are reported by the calls.
    model.on('error', () => undefined);
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    return new Broker(model, channel);
  }

  /** Messages ready in `queue` (not counting the ones a consumer holds unacked). */
  async depth(queue: string): Promise<number> {
    const { messageCount } = await this.channel.checkQueue(queue);
    return messageCount;
  }

  /** Takes one message off `queue` and acks it (undefined when empty). */
  async take(queue: string): Promise<Buffer | undefined> {
    const message = await this.channel.get(queue, { noAck: true });
    return message ? message.content : undefined;
  }

  /** Publishes raw bytes to `queue`, persistent, as another producer would. */
  async publish(queue: string, content: Buffer): Promise<void> {
    this.channel.sendToQueue(queue, content, { persistent: true, contentType: 'application/json' });
    // A round trip after the publish: the broker has routed it once this answers.
    await this.channel.checkQueue(queue);
  }

  async close(): Promise<void> {
    await this.model.close().catch(() => undefined);
  }

  /** Whether `queue` has been declared (a throwaway channel: a failed check closes its channel). */
  static async exists(url: string, queue: string): Promise<boolean> {
    const model = await amqplib.connect(url);
    model.on('error', () => undefined);
    try {
      const channel = await model.createChannel();
      channel.on('error', () => undefined);
      return await channel.checkQueue(queue).then(
        () => true,
        () => false,
      );
    } finally {
      await model.close().catch(() => undefined);
    }
  }

  /** Deletes the queues (and their `.dead` dead-letter queues); missing ones are fine. */
  static async deleteQueues(url: string, queues: Iterable<string>): Promise<void> {
    const model = await amqplib.connect(url);
    model.on('error', () => undefined);
    try {
      for (const queue of queues) {
        for (const name of [queue, `${queue}.dead`]) {
          const channel = await model.createChannel();
          channel.on('error', () => undefined);
          await channel.deleteQueue(name).catch(() => undefined);
          await channel.close().catch(() => undefined);
        }
      }
    } finally {
      await model.close().catch(() => undefined);
    }
  }
}
