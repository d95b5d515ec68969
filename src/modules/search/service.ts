import { randomUUID } from 'node:crypto';
import { badParameters, taskFailed, taskNotComplete, taskNotFound, tooManyRequests } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { JobQueue } from '../../infra/queue.js';
import { TaskLimitError, type ResultStore } from '../../infra/results.js';
import type { ChatsService } from '../chats/index.js';
import type { Caller } from '../types.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { SearchContext, SearchHit, SearchJob, SearchTask, StoredHit } from './model.js';
import { HEADLINE_DELIMITER, type FoundMessage, type SearchRepository } from './repository.js';

export interface SearchRequest {
  query: string;
  chatId?: string;
  memberId?: string;
  after?: Date;
  before?: Date;
}

export interface SearchPage {
  hits: SearchHit[];
  /** The cursor of the following page, when there is one. */
  next?: string;
}

/** A long poll reads its task this often even without a notice (one can be lost in an outage). */
const REREAD_MS = 1000;

const finished = (task: SearchTask) => task.status === 'SUCCESS' || task.status === 'FAILED';

/** Words as the full-text parser splits them (letters and digits), for SEARCH_MAX_TERMS. */
const WORD = /[\p{L}\p{N}]+/gu;

/** The fragments that hold a match; all of them when none does (a match only in a stem form). */
function hitOf({ headline, createdAt, ...message }: FoundMessage): SearchHit {
  const fragments = headline.split(HEADLINE_DELIMITER);
  const marked = fragments.filter((fragment) => fragment.includes('<mark>'));
  return {
    ...message,
    createdAt: new Date(createdAt).toISOString(),
    highlights: marked.length ? marked : fragments,
  };
}

export interface SearchLimits {
  maxTerms: number;
  /** SEARCH_TIMEOUT_MS: how long until a running job frees its owner's slot, at most. */
  timeoutMs: number;
}

/** The API side: tasks are created, queued, and read back page by page by their creator only. */
export class SearchService {
  constructor(
    private readonly results: ResultStore<StoredHit>,
    private readonly queue: JobQueue<SearchJob>,
    private readonly chats: ChatsService,
    private readonly repository: SearchRepository,
    private readonly limits: SearchLimits,
  ) {}

  /**
   * Fairness on a shared FIFO queue: each user has at most SEARCH_MAX_LIVE_TASKS unfinished tasks
   * (429 beyond), each job runs at most SEARCH_TIMEOUT_MS, and consumers take SEARCH_PREFETCH jobs at
   * once, so one user's backlog delays another user's job by at most about
   * ceil(SEARCH_MAX_LIVE_TASKS / SEARCH_PREFETCH) job times (one, with the defaults 4 and 4) —
   * without per-user queues or a dispatcher.
   */
  async create(caller: Caller, request: SearchRequest): Promise<string> {
    const terms = request.query.match(WORD)?.length ?? 0;
    if (terms > this.limits.maxTerms) {
      throw badParameters(`message must have at most ${this.limits.maxTerms} words, got ${terms}`);
    }
    if (request.chatId !== undefined) await this.chats.requireVisible(caller, request.chatId);
    const taskId = randomUUID();
    const context: SearchContext = { query: request.query };
    try {
      await this.results.create({
        id: taskId,
        ownerId: caller.userId,
        status: 'WAITING',
        context: JSON.stringify(context),
      });
    } catch (error) {
      if (!(error instanceof TaskLimitError)) throw error;
      throw tooManyRequests(error.retryAfterSeconds ?? Math.ceil(this.limits.timeoutMs / 1000));
    }
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
      await this.results.remove(taskId, caller.userId).catch(() => undefined);
      throw error;
    }
    return taskId;
  }

  /**
   * The task's status, once it is finished or after `waitMs` (a long poll), whichever comes first;
   * `signal` (the client gone, or shutdown) answers at once with the last status read.
   */
  async status(caller: Caller, taskId: string, waitMs: number, signal?: AbortSignal): Promise<SearchTask> {
    if (waitMs <= 0 || !isUuid(taskId)) return this.task(caller, taskId);
    const until = performance.now() + waitMs;
    // Watching first, then reading: a finish in between is not missed (and a task already finished
    // costs one read, as without waiting).
    const watch = await this.results.watch(taskId);
    let task: SearchTask;
    try {
      for (;;) {
        task = await this.task(caller, taskId);
        const left = until - performance.now();
        if (finished(task) || left <= 0) break;
        if ((await watch.next(Math.min(left, REREAD_MS), signal)) === 'aborted') break;
      }
    } finally {
      watch.close();
    }
    return task;
  }

  /** The caller's own task, or 404 `task-not-found` (someone else's looks like none). */
  async task(caller: Caller, taskId: string): Promise<SearchTask> {
    const task = isUuid(taskId) ? await this.results.get(taskId, caller.userId) : undefined;
    if (!task || task.ownerId !== caller.userId) throw taskNotFound();
    return task;
  }

  async page(caller: Caller, taskId: string, limit: number, from: string | undefined): Promise<SearchPage> {
    const task = await this.task(caller, taskId);
    if (task.status === 'FAILED') throw taskFailed();
    if (task.status !== 'SUCCESS') throw taskNotComplete();
    const offset = from ? decodeCursor(from) : 0;
    // Rows stored by an earlier version (during a rolling upgrade) are whole hits: their id is used.
    const ids = (await this.results.results(taskId, caller.userId, offset, limit + 1)).map((row: unknown) =>
      typeof row === 'string' ? row : String((row as { messageId?: unknown } | null)?.messageId),
    );
    const { query } = JSON.parse(task.context ?? '{"query":""}') as SearchContext;
    const found = new Map(
      (await this.repository.messages(ids.slice(0, limit), query)).map((message) => [
        message.messageId,
        message,
      ]),
    );
    // The stored order (newest first); messages are never deleted, but a missing one is skipped.
    const hits = ids
      .slice(0, limit)
      .map((id) => found.get(id))
      .filter((message) => message !== undefined)
      .map(hitOf);
    const page: SearchPage = { hits };
    if (ids.length > limit) page.next = encodeCursor(offset + limit);
    return page;
  }
}
