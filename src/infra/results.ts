import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import type { DependencyMonitor } from './monitor.js';
import { connectRedis, hashTag, type RedisConnection } from './redis.js';

/** The lifecycle of a stored task: waiting for a worker, running, then done either way. */
export type TaskStatus = 'WAITING' | 'IN_PROCESS' | 'SUCCESS' | 'FAILED';

export interface TaskRecord {
  id: string;
  /** Who may read it: the creator's user id; null for an anonymous caller (authentication off). */
  ownerId: string | null;
  status: TaskStatus;
  error?: string;
  total?: number;
}

/**
 * Where tasks and their results (JSON values of type R) live between the worker that writes them
 * and the API that reads them: Redis (shared by every process) or memory (one process). Results
 * expire `ttlSeconds` after completion; reading never deletes.
 */
export interface ResultStore<R> {
  create(task: TaskRecord): Promise<void>;
  get(taskId: string): Promise<TaskRecord | undefined>;
  /** Moves a task that exists and is not finished to IN_PROCESS; false when there is nothing to do. */
  start(taskId: string): Promise<boolean>;
  /** Replaces any earlier results: running a job twice leaves one copy. */
  succeed(taskId: string, results: R[]): Promise<void>;
  fail(taskId: string, error: string): Promise<void>;
  remove(taskId: string): Promise<void>;
  results(taskId: string, offset: number, count: number): Promise<R[]>;
  /** Redis's reachability, when the results live there. */
  readonly monitor?: DependencyMonitor;
  close(): Promise<void>;
}

// Unfinished tasks wait at most this long for a consumer before they are forgotten.
const PENDING_TTL_SECONDS = 86_400;

class MemoryResultStore<R> implements ResultStore<R> {
  private readonly tasks = new Map<string, { task: TaskRecord; results: R[]; expiresAt: number }>();
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

  create(task: TaskRecord): Promise<void> {
    this.tasks.set(task.id, {
      task: { ...task },
      results: [],
      expiresAt: Date.now() + PENDING_TTL_SECONDS * 1000,
    });
    return Promise.resolve();
  }

  get(taskId: string): Promise<TaskRecord | undefined> {
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

  succeed(taskId: string, results: R[]): Promise<void> {
    const entry = this.entry(taskId);
    if (entry) {
      entry.task = { ...entry.task, status: 'SUCCESS', total: results.length };
      entry.results = results;
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

  results(taskId: string, offset: number, count: number): Promise<R[]> {
    return Promise.resolve(this.entry(taskId)?.results.slice(offset, offset + count) ?? []);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }
}

/** A task is a hash, its results a list of JSON rows read with LRANGE; both expire together. */
class RedisResultStore<R> implements ResultStore<R> {
  get monitor(): DependencyMonitor {
    return this.redis.monitor;
  }

  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
    /** Keys are `<prefix>:task:{<id>}` and `<prefix>:hits:{<id>}`: one cluster slot per task. */
    private readonly prefix: string,
  ) {}

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      this.redis.monitor.down(error);
      throw new DependencyUnavailableError('result store', { cause: error });
    }
  }

  private readonly taskKey = (id: string) => `${this.prefix}:task:${hashTag(id)}`;
  private readonly hitsKey = (id: string) => `${this.prefix}:hits:${hashTag(id)}`;

  create(task: TaskRecord): Promise<void> {
    const key = this.taskKey(task.id);
    return this.call(async () => {
      await this.redis.client
        .multi()
        .hset(key, { owner: task.ownerId ?? '', status: task.status })
        .expire(key, PENDING_TTL_SECONDS)
        .exec();
    });
  }

  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.call(async () => {
      const fields = await this.redis.client.hgetall(this.taskKey(taskId));
      if (!fields.status) return undefined;
      const task: TaskRecord = {
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
        this.taskKey(taskId),
      );
      return started === 1;
    });
  }

  succeed(taskId: string, results: R[]): Promise<void> {
    const taskKey = this.taskKey(taskId);
    const hitsKey = this.hitsKey(taskId);
    return this.call(async () => {
      const transaction = this.redis.client.multi().del(hitsKey);
      if (results.length) transaction.rpush(hitsKey, ...results.map((result) => JSON.stringify(result)));
      await transaction
        .hset(taskKey, { status: 'SUCCESS', total: results.length })
        .expire(taskKey, this.ttlSeconds)
        .expire(hitsKey, this.ttlSeconds)
        .exec();
    });
  }

  fail(taskId: string, error: string): Promise<void> {
    const taskKey = this.taskKey(taskId);
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
      await this.redis.client.del(this.taskKey(taskId), this.hitsKey(taskId));
    });
  }

  results(taskId: string, offset: number, count: number): Promise<R[]> {
    return this.call(async () => {
      const rows = await this.redis.client.lrange(this.hitsKey(taskId), offset, offset + count - 1);
      return rows.map((row) => JSON.parse(row) as R);
    });
  }

  close(): Promise<void> {
    return this.redis.close();
  }
}

export function createResultStore<R>(
  options: { redisUrl?: string; ttlSeconds: number; name: string; keyPrefix: string },
  logger: Logger,
): ResultStore<R> {
  if (!options.redisUrl) return new MemoryResultStore<R>(options.ttlSeconds);
  const redis = connectRedis(options.redisUrl, options.name, logger);
  return new RedisResultStore<R>(redis, options.ttlSeconds, options.keyPrefix);
}
