import type { Config } from '../../config.js';
import type { Logger } from '../../infra/logger.js';
import { createJobQueue, type JobQueue } from '../../infra/queue.js';
import { createResultStore, type ResultStore } from '../../infra/results.js';
import { isSearchJob, STORED_ID_BYTES, type SearchJob, type StoredHit } from './model.js';

/** Where tasks wait (the queue) and where their results live (the result store). */
export interface SearchBackends {
  results: ResultStore<StoredHit>;
  queue: JobQueue<SearchJob>;
}

export function searchBackends(config: Config, logger: Logger): SearchBackends {
  return {
    results: createResultStore<StoredHit>(
      {
        redisUrl: config.redisUrl,
        ttlSeconds: config.search.resultTtlSeconds,
        name: 'search results',
        keyPrefix: 'search',
        limits: {
          maxLive: config.search.maxLiveTasks,
          maxStored: config.search.maxStoredTasks,
          maxBytes: config.search.storeMaxBytes,
          reserveBytes: config.search.maxResults * STORED_ID_BYTES,
        },
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
        // In this process, jobs are taken round-robin per user; on RabbitMQ (one FIFO queue) the
        // per-user cap on unfinished tasks is what bounds the jobs of one user ahead of another's.
        fairnessKey: (job) => job.userId ?? '',
      },
      logger,
    ),
  };
}
