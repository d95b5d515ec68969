import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import { connectRedis, type RedisConnection } from './redis.js';

export type TaskStatus = 'WAITING' | 'IN_PROCESS' | 'SUCCESS' | 'FAILED';

export interface SearchTask {
  id: string;
  /** The creator's user id; null for an anonymous caller (authentication off). */
  ownerId: string | null;
  status: TaskStatus;
  error?: string;
  total?: number;
}

export interface SearchHit {
  text: string;
  chat_id: string;
  message_id: string;
  user_id: string;
  created_at: string;
  highlights: string[];
}

/**
 * Where search tasks and their results live between the consumer that writes them and the API that
 * reads them: Redis (shared by every process) or memory (one process). Results expire `ttlSeconds`
 * after completion; reading never deletes.
 */
export interface ResultStore {
  create(task: SearchTask): Promise<void>;
  get(taskId: string): Promise<SearchTask | undefined>;
  /** Moves a task that exists and is not finished to IN_PROCESS; false when there is nothing to do. */
  start(taskId: string): Promise<boolean>;
  /** Replaces any earlier results: running a job twice leaves one copy. */
  succeed(taskId: string, hits: SearchHit[]): Promise<void>;
  fail(taskId: string, error: string): Promise<void>;
  remove(taskId: string): Promise<void>;
  hits(taskId: string, offset: number, count: number): Promise<SearchHit[]>;
  close(): Promise<void>;
}

// Unfinished tasks wait at most this long for a consumer before they are forgotten.
const PENDING_TTL_SECONDS = 86_400;

class MemoryResultStore implements ResultStore {
  private readonly tasks = new Map<string, { task: SearchTask; hits: SearchHit[]; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly ttlSeconds: number) {
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [id, entry] of this.tasks) if (entry.expiresAt <= now) this.tasks.delete(id);
    }, 10_000).unref();
  }

  private entry(taskId: string) {
    const entry = this.tasks.get(taskId);
    if (entry && entry.expiresAt <= Date.now()) {
      this.tasks.delete(taskId);
      return undefined;
    }
    return entry;
  }

  create(task: SearchTask): Promise<void> {
    this.tasks.set(task.id, {
      task: { ...task },
      hits: [],
      expiresAt: Date.now() + PENDING_TTL_SECONDS * 1000,
    });
    return Promise.resolve();
  }

  get(taskId: string): Promise<SearchTask | undefined> {
    const entry = this.entry(taskId);
    return Promise.resolve(entry ? { ...entry.task } : undefined);
  }

  start(taskId: string): Promise<boolean> {
    const entry = this.entry(taskId);
    if (!entry || entry.task.status === 'SUCCESS' || entry.task.status === 'FAILED')
      return Promise.resolve(false);
    entry.task.status = 'IN_PROCESS';
    return Promise.resolve(true);
  }

  succeed(taskId: string, hits: SearchHit[]): Promise<void> {
    const entry = this.entry(taskId);
    if (entry) {
      entry.task = { ...entry.task, status: 'SUCCESS', total: hits.length };
      entry.hits = hits;
      entry.expiresAt = Date.now() + this.ttlSeconds * 1000;
    }
    return Promise.resolve();
  }

  fail(taskId: string, error: string): Promise<void> {
    const entry = this.entry(taskId);
    if (entry) {
      entry.task = { ...entry.task, status: 'FAILED', error };
      entry.expiresAt = Date.now() + this.ttlSeconds * 1000;
    }
    return Promise.resolve();
  }

  remove(taskId: string): Promise<void> {
    this.tasks.delete(taskId);
    return Promise.resolve();
  }

  hits(taskId: string, offset: number, count: number): Promise<SearchHit[]> {
    return Promise.resolve(this.entry(taskId)?.hits.slice(offset, offset + count) ?? []);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }
}

/** A task is a hash, its results a list of JSON rows read with LRANGE; both expire together. */
class RedisResultStore implements ResultStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
  ) {}

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      this.redis.monitor.down(error);
      throw new DependencyUnavailableError('result store', { cause: error });
    }
  }

  private static taskKey = (id: string) => `search:task:${id}`;
  private static hitsKey = (id: string) => `search:hits:${id}`;

  create(task: SearchTask): Promise<void> {
    const key = RedisResultStore.taskKey(task.id);
    return this.call(async () => {
      await this.redis.client
        .multi()
        .hset(key, { owner: task.ownerId ?? '', status: task.status })
        .expire(key, PENDING_TTL_SECONDS)
        .exec();
    });
  }

  get(taskId: string): Promise<SearchTask | undefined> {
    return this.call(async () => {
      const fields = await this.redis.client.hgetall(RedisResultStore.taskKey(taskId));
      if (!fields.status) return undefined;
      const task: SearchTask = {
        id: taskId,
        ownerId: fields.owner || null,
        status: fields.status as TaskStatus,
      };
      if (fields.error) task.error = fields.error;
      if (fields.total !== undefined) task.total = Number(fields.total);
      return task;
    });
  }

  start(taskId: string): Promise<boolean> {
    // Atomic check-and-set: only a WAITING or IN_PROCESS (redelivered) task is (re)started.
    return this.call(async () => {
      const started = await this.redis.client.eval(
        `local s = redis.call('HGET', KEYS[1], 'status')
         if s == 'WAITING' or s == 'IN_PROCESS' then redis.call('HSET', KEYS[1], 'status', 'IN_PROCESS') return 1 end
         return 0`,
        1,
        RedisResultStore.taskKey(taskId),
      );
      return started === 1;
    });
  }

  succeed(taskId: string, hits: SearchHit[]): Promise<void> {
    const taskKey = RedisResultStore.taskKey(taskId);
    const hitsKey = RedisResultStore.hitsKey(taskId);
    return this.call(async () => {
      const transaction = this.redis.client.multi().del(hitsKey);
      if (hits.length) transaction.rpush(hitsKey, ...hits.map((hit) => JSON.stringify(hit)));
      await transaction
        .hset(taskKey, { status: 'SUCCESS', total: hits.length })
        .expire(taskKey, this.ttlSeconds)
        .expire(hitsKey, this.ttlSeconds)
        .exec();
    });
  }

  fail(taskId: string, error: string): Promise<void> {
    const taskKey = RedisResultStore.taskKey(taskId);
    return this.call(async () => {
      await this.redis.client
        .multi()
        .hset(taskKey, { status: 'FAILED', error })
        .expire(taskKey, this.ttlSeconds)
        .exec();
    });
  }

  remove(taskId: string): Promise<void> {
    return this.call(async () => {
      await this.redis.client.del(RedisResultStore.taskKey(taskId), RedisResultStore.hitsKey(taskId));
    });
  }

  hits(taskId: string, offset: number, count: number): Promise<SearchHit[]> {
    return this.call(async () => {
      const rows = await this.redis.client.lrange(
        RedisResultStore.hitsKey(taskId),
        offset,
        offset + count - 1,
      );
      return rows.map((row) => JSON.parse(row) as SearchHit);
    });
  }

  close(): Promise<void> {
    return this.redis.close();
  }
}

export function createResultStore(
  options: { redisUrl?: string; ttlSeconds: number },
  logger: Logger,
): ResultStore {
  if (!options.redisUrl) return new MemoryResultStore(options.ttlSeconds);
  return new RedisResultStore(connectRedis(options.redisUrl, 'search results', logger), options.ttlSeconds);
}
