import type { Middleware } from 'koa';
import type { Database } from '../../infra/db.js';
import type { ChatsService } from '../chats/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { searchBackends } from './backends.js';
import { searchRoutes } from './routes.js';
import { SearchRepository } from './repository.js';
import { SearchService } from './service.js';
import { createSearchDatabase, createSearchWorker } from './worker.js';

/**
 * Asynchronous full-text search. With AMQP_URL jobs go to RabbitMQ for `consumer` processes;
 * without it this process runs them itself.
 */
export async function searchModule(
  { config, db, logger, rules, metrics }: ModuleContext,
  deps: { chats: ChatsService; authenticate: Middleware },
): Promise<AppModule> {
  const { results, queue } = searchBackends(config, logger);
  // The in-process worker's queries may run up to SEARCH_TIMEOUT_MS: on Postgres they get their own
  // small pool with that bound, not the API's short one.
  let workerDb: Database | undefined;
  if (!config.amqpUrl) {
    workerDb = db.kind === 'embedded' ? db : await createSearchDatabase(config, logger);
    await queue.consume(
      createSearchWorker(config, workerDb, results, logger, metrics),
      config.search.prefetch,
    );
  }
  // Results pages read their messages through the API's own pool (by primary key: short queries).
  const service = new SearchService(results, queue, deps.chats, new SearchRepository(db.knex, db.read), {
    maxTerms: config.search.maxTerms,
    timeoutMs: config.search.timeoutMs,
  });
  const stopping = new AbortController();
  return {
    name: 'search',
    routes: (router) =>
      searchRoutes(router, service, {
        maxBodyBytes: config.maxBodyBytes,
        rules,
        authenticate: deps.authenticate,
        stopping: stopping.signal,
        waits: metrics.searchWaits,
      }),
    stop: () => stopping.abort(),
    dependencies: [queue.monitor, results.monitor, workerDb === db ? undefined : workerDb?.monitor].filter(
      (monitor) => monitor !== undefined,
    ),
    async close() {
      await queue.close();
      await results.close();
      if (workerDb && workerDb !== db) await workerDb.close();
    },
  };
}
