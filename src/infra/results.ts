import { DependencyUnavailableError } from '../errors.js';
import type { Logger } from './logger.js';
import type { DependencyMonitor } from './monitor.js';
import { clientFor, connectRedis, hashTag, type RedisClient, type RedisConnection } from './redis.js';
import { quit } from './redis-bus.js';
import { Waiters, type TaskWatch } from './task-watch.js';

/** The lifecycle of a stored task: waiting for a worker, running, then done either way. */
export type TaskStatus = 'WAITING' | 'IN_PROCESS' | 'SUCCESS' | 'FAILED';

export interface TaskRecord {
  id: string;
  /** Who may read it: the creator's user id; null for an anonymous caller (authentication off). */
  ownerId: string | null;
  status: TaskStatus;
  error?: string;
  total?: number;
  /** What a reader needs besides the results (e.g. the search query), opaque to the store. */
  context?: string;
}

/** create() refused: the owner holds too many tasks, or the in-process store is full. */
export class TaskLimitError extends Error {
  constructor(
    readonly reason: 'live' | 'stored' | 'full',
    /** When a slot frees up for sure (a finished task expires), when the store knows. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`task refused: ${reason}`);
    this.name = 'TaskLimitError';
  }
}

/** What one owner may hold, and (in-process store only) what the store may hold in all. */
export interface ResultStoreLimits {
  /** Unfinished tasks per owner. */
  maxLive: number;
  /** Tasks per owner, unfinished or finished and not yet expired. */
  maxStored: number;
  /** In-process store: bytes in all (results as JSON, and a reservation for each unfinished task). */
  maxBytes: number;
  /** Bytes reserved for an unfinished task: the most its results can take. */
  reserveBytes: number;
}

/**
 * Where tasks and their results (JSON values of type R) live between the worker that writes them
 * and the API that reads them: Redis (shared by every process) or memory (one process). Results
 * expire `ttlSeconds` after completion; reading never deletes.
 */
export interface ResultStore<R> {
  /** Throws TaskLimitError when the owner (or the store) is at its limits. */
  create(task: TaskRecord): Promise<void>;
  /** A task is looked up under its owner: another owner's task is not found. */
  get(taskId: string, ownerId: string | null): Promise<TaskRecord | undefined>;
  /** Moves a task that exists and is not finished to IN_PROCESS; false when there is nothing to do. */
  start(taskId: string, ownerId: string | null): Promise<boolean>;
  /** Replaces any earlier results: running a job twice leaves one copy. */
  succeed(taskId: string, ownerId: string | null, results: R[]): Promise<void>;
  fail(taskId: string, ownerId: string | null, error: string): Promise<void>;
  remove(taskId: string, ownerId: string | null): Promise<void>;
  results(taskId: string, ownerId: string | null, offset: number, count: number): Promise<R[]>;
  /**
   * Wakes the caller when a task finishes (in this process, or on any process sharing the Redis).
   * A notice may be lost (an outage of the channel): a waiter reads the task again now and then.
   */
  watch(taskId: string): Promise<TaskWatch>;
  /** Redis's reachability, when the results live there. */
  readonly monitor?: DependencyMonitor;
  close(): Promise<void>;
}

// Unfinished tasks wait at most this long for a consumer before they are forgotten.
const PENDING_TTL_SECONDS = 86_400;

/** How long a watch waits for its channel to be heard before it is handed out anyway. */
const SUBSCRIBE_WAIT_MS = 1000;

const secondsUntil = (at: number) => Math.max(1, Math.ceil((at - Date.now()) / 1000));
const ANONYMOUS = 'anonymous';

interface MemoryEntry<R> {
  task: TaskRecord;
  results: R[];
  expiresAt: number;
  /** Counted against maxBytes: the reservation while unfinished, the results' JSON size once done. */
  bytes: number;
}

const finished = (task: TaskRecord) => task.status === 'SUCCESS' || task.status === 'FAILED';

/** Per-owner caps as in Redis, and a byte budget for the whole process. */
class MemoryResultStore<R> implements ResultStore<R> {
  private readonly tasks = new Map<string, MemoryEntry<R>>();
  private readonly waiters = new Waiters();
  private readonly sweeper: NodeJS.Timeout;
  private bytes = 0;

  constructor(
    private readonly ttlSeconds: number,
    private readonly limits: ResultStoreLimits,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 10_000).unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, entry] of this.tasks) if (entry.expiresAt <= now) this.drop(id, entry);
  }

  private drop(taskId: string, entry: MemoryEntry<R>): void {
    this.tasks.delete(taskId);
    this.bytes -= entry.bytes;
  }

  private entry(taskId: string, ownerId: string | null) {
    const entry = this.tasks.get(taskId);
    if (!entry || entry.task.ownerId !== ownerId) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.drop(taskId, entry);
      return undefined;
    }
    return entry;
  }

  /** The first moment a finished task (of `owner`, or anyone's) expires and frees its share. */
  private nextExpiry(owner?: string | null): number | undefined {
    let next: number | undefined;
    for (const { task, expiresAt } of this.tasks.values()) {
      if (finished(task) && (owner === undefined || task.ownerId === owner)) {
        next = Math.min(next ?? expiresAt, expiresAt);
      }
    }
    return next;
  }

  create(task: TaskRecord): Promise<void> {
    this.sweep();
    const { maxLive, maxStored, maxBytes, reserveBytes } = this.limits;
    const owned = [...this.tasks.values()].filter((entry) => entry.task.ownerId === task.ownerId);
    if (owned.filter((entry) => !finished(entry.task)).length >= maxLive) {
      return Promise.reject(new TaskLimitError('live'));
    }
    if (owned.length >= maxStored) {
      const at = this.nextExpiry(task.ownerId);
      return Promise.reject(new TaskLimitError('stored', at && secondsUntil(at)));
    }
    if (this.bytes + reserveBytes > maxBytes) {
      const at = this.nextExpiry();
      return Promise.reject(new TaskLimitError('full', at && secondsUntil(at)));
    }
    this.tasks.set(task.id, {
      task: { ...task },
      results: [],
      expiresAt: Date.now() + PENDING_TTL_SECONDS * 1000,
      bytes: reserveBytes,
    });
    this.bytes += reserveBytes;
    return Promise.resolve();
  }

  get(taskId: string, ownerId: string | null): Promise<TaskRecord | undefined> {
    const entry = this.entry(taskId, ownerId);
    return Promise.resolve(entry ? { ...entry.task } : undefined);
  }

  start(taskId: string, ownerId: string | null): Promise<boolean> {
    const entry = this.entry(taskId, ownerId);
    if (!entry || finished(entry.task)) return Promise.resolve(false);
    entry.task.status = 'IN_PROCESS';
    return Promise.resolve(true);
  }

  private finish(entry: MemoryEntry<R>, task: TaskRecord, results: R[]): void {
    const bytes = results.length ? Buffer.byteLength(JSON.stringify(results)) : 0;
    this.bytes += bytes - entry.bytes;
    entry.bytes = bytes;
    entry.task = task;
    entry.results = results;
    entry.expiresAt = Date.now() + this.ttlSeconds * 1000;
    this.waiters.wake(task.id);
  }

  succeed(taskId: string, ownerId: string | null, results: R[]): Promise<void> {
    const entry = this.entry(taskId, ownerId);
    if (entry) this.finish(entry, { ...entry.task, status: 'SUCCESS', total: results.length }, results);
    return Promise.resolve();
  }

  fail(taskId: string, ownerId: string | null, error: string): Promise<void> {
    const entry = this.entry(taskId, ownerId);
    if (entry) this.finish(entry, { ...entry.task, status: 'FAILED', error }, []);
    return Promise.resolve();
  }

  remove(taskId: string, ownerId: string | null): Promise<void> {
    const entry = this.tasks.get(taskId);
    if (entry && entry.task.ownerId === ownerId) this.drop(taskId, entry);
    return Promise.resolve();
  }

  results(taskId: string, ownerId: string | null, offset: number, count: number): Promise<R[]> {
    return Promise.resolve(this.entry(taskId, ownerId)?.results.slice(offset, offset + count) ?? []);
  }

  watch(taskId: string): Promise<TaskWatch> {
    return Promise.resolve(this.waiters.watch(taskId));
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }
}

// Admission in one step, so concurrent creates cannot both take the last slot. Per owner, a sorted set
// of unfinished task ids (scored by when they are forgotten) and one of finished ones (scored by
// when their results expire); expired members are dropped before counting.
// A task that is gone or finished without leaving the unfinished set (e.g. written by an older
// version during a rolling upgrade) is dropped from it too: the set holds at most maxLive ids, so
// checking each is cheap. The task keys it reads besides KEYS carry the owner's hash tag: same slot.
const CREATE_SCRIPT = `
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local s = redis.call('HGET', ARGV[8] .. id, 'status')
  if s ~= 'WAITING' and s ~= 'IN_PROCESS' then redis.call('ZREM', KEYS[2], id) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local live = redis.call('ZCARD', KEYS[2])
if live >= tonumber(ARGV[5]) then return {1, 0} end
if live + redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {2, first[2] or 0}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'status', 'WAITING', 'context', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {0, 0}`;

// The finish of a task: its fields (ARGV[5] values from ARGV[6] on, as name/value pairs), then its
// results, replacing any earlier ones; both expire together. A task that is gone (expired
// unfinished) does not enter its owner's finished set. Results are pushed in slices (Lua's unpack
// takes a few thousand values at most).
const FINISH_SCRIPT = `
local present = redis.call('EXISTS', KEYS[1]) == 1
local nfields = tonumber(ARGV[5])
redis.call('DEL', KEYS[2])
local first = 6 + nfields
for i = first, #ARGV, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6, first - 1))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if present then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[2]) * 1000)
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 0`;

/**
 * A task is a hash, its results a list read with LRANGE; both expire together. Each owner has two
 * sorted sets of task ids (unfinished, finished) for the per-owner caps.
 */
class RedisResultStore<R> implements ResultStore<R> {
  private readonly waiters = new Waiters();
  /** The connection that hears finished tasks: made on the first watch (workers never watch). */
  private subscription?: { client: RedisClient; ready: Promise<void> };
  private closed = false;

  get monitor(): DependencyMonitor {
    return this.redis.monitor;
  }

  constructor(
    private readonly url: string,
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
    /**
     * Keys are `<prefix>:{<owner>}:task:<id>`, `<prefix>:{<owner>}:hits:<id>`, `<prefix>:{<owner>}:live`
     * and `<prefix>:{<owner>}:done`: an owner's tasks and sets share one cluster slot, so the admission
     * script and the transactions that touch them together work on Redis Cluster too.
     */
    private readonly prefix: string,
    private readonly limits: ResultStoreLimits,
  ) {}

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      this.redis.monitor.down(error);
      throw new DependencyUnavailableError('result store', { cause: error });
    }
  }

  private readonly tag = (owner: string | null) => `${this.prefix}:${hashTag(owner ?? ANONYMOUS)}`;
  private readonly taskKey = (id: string, owner: string | null) => `${this.tag(owner)}:task:${id}`;
  private readonly hitsKey = (id: string, owner: string | null) => `${this.tag(owner)}:hits:${id}`;
  private readonly liveKey = (owner: string | null) => `${this.tag(owner)}:live`;
  private readonly doneKey = (owner: string | null) => `${this.tag(owner)}:done`;
  /** Where finished task ids are announced (plain pub/sub: on a cluster every node relays it). */
  private get doneChannel() {
    return `${this.prefix}:finished`;
  }

  async create(task: TaskRecord): Promise<void> {
    const owner = task.ownerId;
    const [refused, firstExpiry] = await this.call(
      () =>
        this.redis.client.eval(
          CREATE_SCRIPT,
          3,
          this.taskKey(task.id, owner),
          this.liveKey(owner),
          this.doneKey(owner),
          task.ownerId ?? '',
          task.id,
          Date.now(),
          PENDING_TTL_SECONDS * 1000,
          this.limits.maxLive,
          this.limits.maxStored,
          task.context ?? '',
          `${this.tag(owner)}:task:`,
        ) as Promise<[number, string | number]>,
    );
    if (refused === 1) throw new TaskLimitError('live');
    if (refused === 2) {
      const at = Number(firstExpiry);
      throw new TaskLimitError('stored', at > 0 ? secondsUntil(at) : undefined);
    }
  }

  get(taskId: string, ownerId: string | null): Promise<TaskRecord | undefined> {
    return this.call(async () => {
      const fields = await this.redis.client.hgetall(this.taskKey(taskId, ownerId));
      if (!fields.status) return undefined;
      const task: TaskRecord = {
        id: taskId,
        ownerId: fields.owner || null,
        status: fields.status as TaskStatus,
      };
      if (fields.error) task.error = fields.error;
      if (fields.total !== undefined) task.total = Number(fields.total);
      if (fields.context) task.context = fields.context;
      return task;
    });
  }

  start(taskId: string, ownerId: string | null): Promise<boolean> {
    // Atomic check-and-set: only a WAITING or IN_PROCESS (redelivered) task is (re)started.
    return this.call(async () => {
      const started = await this.redis.client.eval(
        `local s = redis.call('HGET', KEYS[1], 'status')
         if s == 'WAITING' or s == 'IN_PROCESS' then redis.call('HSET', KEYS[1], 'status', 'IN_PROCESS') return 1 end
         return 0`,
        1,
        this.taskKey(taskId, ownerId),
      );
      return started === 1;
    });
  }

  /**
   * Writes the outcome, moves the task from its owner's unfinished set to the finished one and
   * announces it: one script, one round trip (the finish is on every search's critical path).
   */
  private finish(
    taskId: string,
    owner: string | null,
    fields: Record<string, string | number>,
    results: R[],
  ): Promise<void> {
    const pairs = Object.entries(fields).flat();
    return this.call(async () => {
      await this.redis.client.eval(
        FINISH_SCRIPT,
        4,
        this.taskKey(taskId, owner),
        this.hitsKey(taskId, owner),
        this.liveKey(owner),
        this.doneKey(owner),
        taskId,
        this.ttlSeconds,
        Date.now() + this.ttlSeconds * 1000,
        this.doneChannel,
        pairs.length,
        ...pairs,
        ...results.map((result) => JSON.stringify(result)),
      );
    });
  }

  succeed(taskId: string, ownerId: string | null, results: R[]): Promise<void> {
    return this.finish(taskId, ownerId, { status: 'SUCCESS', total: results.length }, results);
  }

  fail(taskId: string, ownerId: string | null, error: string): Promise<void> {
    return this.finish(taskId, ownerId, { status: 'FAILED', error }, []);
  }

  remove(taskId: string, ownerId: string | null): Promise<void> {
    return this.call(async () => {
      await this.redis.client
        .multi()
        .del(this.taskKey(taskId, ownerId), this.hitsKey(taskId, ownerId))
        .zrem(this.liveKey(ownerId), taskId)
        .zrem(this.doneKey(ownerId), taskId)
        .exec();
    });
  }

  results(taskId: string, ownerId: string | null, offset: number, count: number): Promise<R[]> {
    return this.call(async () => {
      const rows = await this.redis.client.lrange(this.hitsKey(taskId, ownerId), offset, offset + count - 1);
      return rows.map((row) => JSON.parse(row) as R);
    });
  }

  private subscribed(): Promise<void> {
    if (!this.subscription) {
      const client = clientFor(this.url, {
        connectionName: 'messenger-search-finished',
        connectTimeout: 1000,
        retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
      });
      // Outages are the store connection's to report; this one reconnects and subscribes again.
      client.on('error', () => {});
      client.on('message', (_channel: string, taskId: string) => this.waiters.wake(taskId));
      const ready = client.subscribe(this.doneChannel).then(
        () => undefined,
        (error: unknown) => {
          // Not subscribed: the next watch tries with a new connection.
          if (this.subscription?.client === client) this.subscription = undefined;
          client.disconnect();
          throw error;
        },
      );
      this.subscription = { client, ready };
    }
    return this.subscription.ready;
  }

  async watch(taskId: string): Promise<TaskWatch> {
    const watch = this.waiters.watch(taskId);
    if (this.closed) return watch;
    // Until the channel is heard, a notice can be missed: the waiter's own rereads cover that.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.subscribed().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    return watch;
  }

  async close(): Promise<void> {
    this.closed = true;
    const subscription = this.subscription;
    this.subscription = undefined;
    if (subscription) await quit(subscription.client);
    await this.redis.close();
  }
}

export function createResultStore<R>(
  options: {
    redisUrl?: string;
    ttlSeconds: number;
    name: string;
    keyPrefix: string;
    limits: ResultStoreLimits;
  },
  logger: Logger,
): ResultStore<R> {
  if (!options.redisUrl) return new MemoryResultStore<R>(options.ttlSeconds, options.limits);
  const redis = connectRedis(options.redisUrl, options.name, logger);
  return new RedisResultStore<R>(
    options.redisUrl,
    redis,
    options.ttlSeconds,
    options.keyPrefix,
    options.limits,
  );
}
