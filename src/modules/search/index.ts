import type { Config } from '../../config.js';
import { anonymous } from '../../http/caller.js';
import type { Database } from '../../infra/db.js';
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
  if (!config.amqpUrl) await queue.consume(searchWorker(config, db, results), config.search.prefetch);
  const service = new SearchService(results, queue, createChatsService(db.knex));
  return {
    name: 'search',
    routes: (router) =>
      searchRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        authenticate: extensions.authenticate ?? anonymous,
      }),
    async close() {
      await queue.close();
      await results.close();
    },
  };
}
