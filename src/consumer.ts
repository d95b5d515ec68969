import type { Config } from './config.js';
import type { Logger } from './infra/logger.js';
import { closeQuietly } from './infra/shutdown.js';
import { searchBackends } from './modules/search/backends.js';
import { createSearchDatabase, createSearchWorker } from './modules/search/worker.js';

export interface Consumer {
  /** Stops taking jobs, finishes and acks the ones in hand, closes every connection. */
  stop(): Promise<void>;
}

/** The `consumer` role: takes search jobs from RabbitMQ and stores their results in Redis. */
export async function startConsumer(config: Config, logger: Logger): Promise<Consumer> {
  if (!config.amqpUrl) throw new Error('the consumer needs AMQP_URL (and REDIS_URL) to take jobs from');
  const db = await createSearchDatabase(config, logger);
  const { results, queue } = searchBackends(config, logger);
  await queue.consume(createSearchWorker(config, db, results, logger), config.search.prefetch);
  logger.info({ queue: config.search.queue, prefetch: config.search.prefetch }, 'consumer started');
  return {
    async stop() {
      await queue.stopConsuming();
      await closeQuietly(logger, 'job queue', () => queue.close());
      await closeQuietly(logger, 'result store', () => results.close());
      await closeQuietly(logger, 'database', () => db.close());
    },
  };
}
