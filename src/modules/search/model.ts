import type { TaskRecord, TaskStatus } from '../../infra/results.js';

/** A search task as its creator sees it: the result store's task lifecycle. */
export type SearchTask = TaskRecord;
export type { TaskStatus };

/**
 * What a task stores per message found: its id only. Texts and highlights are read from the
 * database page by page, so a task holds ~50 bytes per hit rather than the message text.
 */
export type StoredHit = string;

/** Bytes a stored hit takes as JSON ("<uuid>", with a comma), for the in-process store's budget. */
export const STORED_ID_BYTES = 39;

/** The query a task's highlights are computed with, kept with the task. */
export interface SearchContext {
  query: string;
}

/** One message found, in the code's names (present.ts shows it to clients). */
export interface SearchHit {
  messageId: string;
  chatId: string;
  memberId: string;
  text: string;
  /** ISO 8601: hits are stored as JSON. */
  createdAt: string;
  /** The text's fragments around the matches, with <mark> around them. */
  highlights: string[];
}

/** What the API puts on the queue for a worker. */
export interface SearchJob {
  taskId: string;
  /** The creator: the job searches the chats this user is a member of when it runs (null: all). */
  userId: string | null;
  query: string;
  chatId?: string;
  memberId?: string;
  after?: string;
  before?: string;
}

export function isSearchJob(value: unknown): value is SearchJob {
  const job = value as Partial<SearchJob> | null;
  return typeof job?.taskId === 'string' && typeof job.query === 'string';
}
