import type { Config } from '../../config.js';
import type { Logger } from '../../infra/logger.js';
import { createJobQueue, type JobQueue } from '../../infra/queue.js';
import { createResultStore, type ResultStore } from '../../infra/results.js';
import { isSearchJob, type SearchHit, type SearchJob } from './model.js';

/** Where tasks wait (the queue) and where their results live (the result store). */
export interface SearchBackends {
  results: ResultStore<SearchHit>;
  queue: JobQueue<SearchJob>;
}

export function searchBackends(config: Config, logger: Logger): SearchBackends {
  return {
    results: createResultStore<SearchHit>(
      {
        redisUrl: config.redisUrl,
        ttlSeconds: config.search.resultTtlSeconds,
        name: 'search results',
        keyPrefix: 'search',
      },
      logger,
    ),
    queue: createJobQueue<SearchJob>(
      {
        amqpUrl: config.amqpUrl,
        queue: config.search.queue,
        queueType: config.search.queueType,
        deliveryLimit: config.search.deliveryLimit,
        isJob: isSearchJob,
      },
      logger,
    ),
  };
}
