import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { taskFailed, taskNotComplete, taskNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { JobQueue, SearchJob } from '../../infra/queue.js';
import type { ResultStore, SearchHit, SearchTask } from '../../infra/results.js';
import { TimeoutError } from '../../infra/timeout.js';
import type { ChatsService } from '../chats/index.js';
import type { Caller } from '../types.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { isTimeout, type SearchFilter, type SearchRepository } from './repository.js';

export interface SearchRequest {
  query: string;
  chatId?: string;
  memberId?: string;
  after?: Date;
  before?: Date;
}

export interface SearchPage {
  messages: SearchHit[];
  next?: { iterator: string };
}

/** The API side: tasks are created, queued, and read back page by page by their creator only. */
export class SearchService {
  constructor(
    private readonly results: ResultStore,
    private readonly queue: JobQueue,
    private readonly chats: ChatsService,
  ) {}

  async create(caller: Caller, request: SearchRequest): Promise<string> {
    if (request.chatId !== undefined) await this.chats.requireVisible(caller, request.chatId);
    const taskId = randomUUID();
    await this.results.create({ id: taskId, ownerId: caller.userId, status: 'WAITING' });
    const job: SearchJob = {
      taskId,
      userId: caller.userId,
      query: request.query,
      chatId: request.chatId,
      memberId: request.memberId,
      after: request.after?.toISOString(),
      before: request.before?.toISOString(),
    };
    try {
      await this.queue.publish(job);
    } catch (error) {
      await this.results.remove(taskId).catch(() => undefined);
      throw error;
    }
    return taskId;
  }

  /** The caller's own task, or 404 `task-not-found` (someone else's looks like none). */
  async task(caller: Caller, taskId: string): Promise<SearchTask> {
    const task = isUuid(taskId) ? await this.results.get(taskId) : undefined;
    if (!task || task.ownerId !== caller.userId) throw taskNotFound();
    return task;
  }

  async page(caller: Caller, taskId: string, limit: number, from: string | undefined): Promise<SearchPage> {
    const task = await this.task(caller, taskId);
    if (task.status === 'FAILED') throw taskFailed();
    if (task.status !== 'SUCCESS') throw taskNotComplete();
    const offset = from ? decodeCursor(from) : 0;
    const hits = await this.results.hits(taskId, offset, limit + 1);
    const page: SearchPage = { messages: hits.slice(0, limit) };
    if (hits.length > limit) page.next = { iterator: encodeCursor(offset + limit) };
    return page;
  }
}

/** How much later than the database's own statement timeout the worker gives up by itself. */
const DEADLINE_GRACE_MS = 250;

/**
 * The statement timeout bounds the query on Postgres (57014: a timeout); no answer at all by the
 * connection's own deadline is an outage, retried. PGlite ignores statement_timeout and runs a query
 * on this thread (no timer fires meanwhile), so a result that arrives too late counts as a timeout
 * too: either way a job never succeeds past its deadline.
 */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  const started = performance.now();
  const result = await work;
  if (performance.now() - started > ms) throw new TimeoutError(`result after ${ms} ms`);
  return result;
}

export interface WorkerOptions {
  maxResults: number;
  timeoutMs: number;
  maxAttempts: number;
  isUnavailable(error: unknown): boolean;
}

/** First retry delay while the database is unreachable; it doubles on each attempt. */
const RETRY_DELAY_MS = 500;

/**
 * The consumer side: runs one job. Idempotent: a redelivered job recomputes and replaces the same
 * results; a job whose task is finished or gone is skipped. Throws only for failures worth a
 * redelivery (the result store being away, or an unexpected error).
 */
export function createSearchWorker(
  repository: SearchRepository,
  results: ResultStore,
  options: WorkerOptions,
) {
  /** The hits, or why there are none; only the database is retried here. */
  async function run(filter: SearchFilter): Promise<SearchHit[] | { error: string }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withDeadline(
          repository.search(filter, options.maxResults),
          options.timeoutMs + DEADLINE_GRACE_MS,
        );
      } catch (error) {
        if (isTimeout(error) || error instanceof TimeoutError) return { error: 'timeout' };
        if (!options.isUnavailable(error)) throw error;
        if (attempt >= options.maxAttempts) return { error: 'database-unavailable' };
        await sleep(RETRY_DELAY_MS * 2 ** (attempt - 1));
      }
    }
  }

  return async (job: SearchJob): Promise<void> => {
    if (!(await results.start(job.taskId))) return;
    let outcome: SearchHit[] | { error: string };
    try {
      outcome = await run({
        query: job.query,
        userId: job.userId,
        chatId: job.chatId,
        memberId: job.memberId,
        after: job.after ? new Date(job.after) : undefined,
        before: job.before ? new Date(job.before) : undefined,
      });
    } catch (error) {
      await results.fail(job.taskId, 'internal-error');
      throw error;
    }
    if (Array.isArray(outcome)) await results.succeed(job.taskId, outcome);
    else await results.fail(job.taskId, outcome.error);
  };
}
