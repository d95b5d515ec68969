import { randomUUID } from 'node:crypto';
import { taskFailed, taskNotComplete, taskNotFound } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { JobQueue } from '../../infra/queue.js';
import type { ResultStore } from '../../infra/results.js';
import type { ChatsService } from '../chats/index.js';
import type { Caller } from '../types.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { SearchHit, SearchJob, SearchTask } from './model.js';

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

/** The API side: tasks are created, queued, and read back page by page by their creator only. */
export class SearchService {
  constructor(
    private readonly results: ResultStore<SearchHit>,
    private readonly queue: JobQueue<SearchJob>,
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
    const hits = await this.results.results(taskId, offset, limit + 1);
    const page: SearchPage = { hits: hits.slice(0, limit) };
    if (hits.length > limit) page.next = encodeCursor(offset + limit);
    return page;
  }
}
