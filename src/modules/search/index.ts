import type { Config } from '../../config.js';
import { createDatabase, type Database } from '../../infra/db.js';
import { createJobQueue, type JobQueue } from '../../infra/queue.js';
import { createResultStore, type ResultStore } from '../../infra/results.js';
import { createChatsService } from '../chats/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { SearchRepository } from './repository.js';
import { searchRoutes } from './routes.js';
import { createSearchWorker, SearchService } from './service.js';

export function searchWorker(config: Config, db: Database, results: ResultStore) {
  return createSearchWorker(new SearchRepository(db.knex), results, {
    maxResults: config.search.maxResults,
    timeoutMs: config.search.timeoutMs,
    maxAttempts: config.search.maxAttempts,
    isUnavailable: (error) => db.isUnavailable(error),
  });
}

/** A database connection for search jobs: its query bound follows SEARCH_TIMEOUT_MS. */
export function createSearchDatabase(config: Config, logger: ModuleContext['logger']): Promise<Database> {
  return createDatabase(config, logger, {
    queryTimeoutMs: config.search.timeoutMs + 1000,
    statementTimeoutMs: config.search.timeoutMs,
    poolMax: Math.min(config.search.prefetch, config.db.poolMax),
    name: 'database (search jobs)',
  });
}

export function searchBackends(
  config: Config,
  logger: ModuleContext['logger'],
): { results: ResultStore; queue: JobQueue } {
  return {
    results: createResultStore(
      { redisUrl: config.redisUrl, ttlSeconds: config.search.resultTtlSeconds },
      logger,
    ),
    queue: createJobQueue({ amqpUrl: config.amqpUrl, queue: config.search.queue }, logger),
  };
}

/**
 * Asynchronous full-text search. With AMQP_URL jobs go to RabbitMQ for `consumer` processes;
 * without it this process runs them itself.
 */
export async function searchModule({ config, db, extensions, logger }: ModuleContext): Promise<AppModule> {
  const { results, queue } = searchBackends(config, logger);
  // The in-process worker's queries may run up to SEARCH_TIMEOUT_MS: on Postgres they get their own
  // small pool with that bound, not the API's short one.
  let workerDb: Database | undefined;
  if (!config.amqpUrl) {
    workerDb = db.kind === 'embedded' ? db : await createSearchDatabase(config, logger);
    await queue.consume(searchWorker(config, workerDb, results), config.search.prefetch);
  }
  const service = new SearchService(results, queue, createChatsService(db.knex, extensions));
  return {
    name: 'search',
    routes: (router) =>
      searchRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        authenticate: extensions.authenticate,
      }),
    async close() {
      await queue.close();
      await results.close();
      if (workerDb && workerDb !== db) await workerDb.close();
    },
  };
}
