import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config.js';
import { createDatabase, type Database } from '../../infra/db.js';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { ResultStore } from '../../infra/results.js';
import { TimeoutError } from '../../infra/timeout.js';
import type { SearchJob, StoredHit } from './model.js';
import { isTimeout, SearchRepository, type SearchFilter } from './repository.js';

/**
 * How much later than Postgres's own statement timeout the worker gives up by itself (so the
 * database's cancel, which frees the backend, comes first). PGlite has none: no grace there.
 */
const DEADLINE_GRACE_MS = 250;

/** First retry delay while the database is unreachable; it doubles on each attempt. */
const RETRY_DELAY_MS = 500;

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

/** A database connection for search jobs: its query bound follows SEARCH_TIMEOUT_MS. */
export function createSearchDatabase(config: Config, logger: Logger): Promise<Database> {
  return createDatabase(config, logger, {
    queryTimeoutMs: config.search.timeoutMs + 1000,
    statementTimeoutMs: config.search.timeoutMs,
    poolMax: Math.min(config.search.prefetch, config.db.poolMax),
    name: 'database (search jobs)',
  });
}

/**
 * Runs one search job (the consumer role, or the API itself without a broker). Idempotent: a
 * redelivered job recomputes and replaces the same results; a job whose task is finished or gone is
 * skipped. Throws only for failures worth a redelivery (the result store being away, or an
 * unexpected error).
 */
export function createSearchWorker(
  config: Config,
  db: Database,
  results: ResultStore<StoredHit>,
  logger: Logger,
  metrics?: Metrics,
): (job: SearchJob) => Promise<void> {
  const repository = new SearchRepository(db.knex, db.read);
  const { maxResults, timeoutMs, maxAttempts } = config.search;
  const deadlineMs = timeoutMs + (db.kind === 'embedded' ? 0 : DEADLINE_GRACE_MS);

  /** The hits, or why there are none; only the database is retried here. */
  async function run(filter: SearchFilter): Promise<StoredHit[] | { error: string }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withDeadline(repository.search(filter, maxResults), deadlineMs);
      } catch (error) {
        if (isTimeout(error) || error instanceof TimeoutError) return { error: 'timeout' };
        if (!db.isUnavailable(error)) throw error;
        if (attempt >= maxAttempts) return { error: 'database-unavailable' };
        await sleep(RETRY_DELAY_MS * 2 ** (attempt - 1));
      }
    }
  }

  return async (job) => {
    const owner = job.userId;
    // The query runs while the task is marked started: a job whose task is finished or gone (a
    // redelivery, a task removed after its publish failed) drops what the query found, and every
    // other job is one Redis round trip sooner done.
    const found = run({
      query: job.query,
      userId: job.userId,
      chatId: job.chatId,
      memberId: job.memberId,
      after: job.after ? new Date(job.after) : undefined,
      before: job.before ? new Date(job.before) : undefined,
    });
    let started: boolean;
    try {
      started = await results.start(job.taskId, owner);
    } catch (error) {
      // The job goes back to the queue once its query is over: the consumer never runs more
      // queries than the jobs it holds (a Redis outage would otherwise pile up abandoned ones).
      await found.catch(() => undefined);
      throw error;
    }
    if (!started) {
      await found.catch(() => undefined);
      return;
    }
    let outcome: StoredHit[] | { error: string };
    try {
      outcome = await found;
    } catch (error) {
      logger.error({ err: error, taskId: job.taskId }, 'search job failed');
      metrics?.searchJobs.inc({ outcome: 'internal-error' });
      await results.fail(job.taskId, owner, 'internal-error');
      throw error;
    }
    if (Array.isArray(outcome)) await results.succeed(job.taskId, owner, outcome);
    else await results.fail(job.taskId, owner, outcome.error);
    metrics?.searchJobs.inc({ outcome: Array.isArray(outcome) ? 'success' : outcome.error });
  };
}
