import type { RedisClient } from '../../src/infra/redis.js';
import { createLogger } from '../../src/infra/logger.js';
import { profile } from './profile.js';
import { Broker, freshQueueName, redisInspector } from './search-helpers.js';
import { killLeftovers } from './spawn.js';

/** What every search resilience suite works with. */
export interface ResilienceKit {
  amqpUrl: string;
  redisUrl: string;
  /** A queue of the test's own (`test.search.<random>`), deleted when the suite ends. */
  queueName: () => string;
  /** Figures the suite prints when it ends. */
  measured: string[];
  /** A plain Redis client on REDIS_URL, to look at what the result store wrote. */
  redis: RedisClient;
}

export const silent = () => createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/**
 * Registers a suite that needs a broker and a result store: only on the services profile with
 * AMQP_URL and REDIS_URL. In the embedded profile search jobs run in-process, there is no broker
 * to cut nor a Redis to lose, and nothing is registered.
 */
export function resilienceSuite(title: string, body: (kit: ResilienceKit) => void): void {
  const { AMQP_URL: amqpUrl, REDIS_URL: redisUrl } = process.env;
  if (!profile.services || !amqpUrl || !redisUrl) return;
  describe(title, function () {
    this.timeout(120_000);
    const queues = new Set<string>();
    const kit: ResilienceKit = {
      amqpUrl,
      redisUrl,
      queueName: () => {
        const name = freshQueueName();
        queues.add(name);
        return name;
      },
      measured: [],
      redis: redisInspector(redisUrl),
    };

    after(async function () {
      this.timeout(120_000);
      await killLeftovers();
      await Broker.deleteQueues(amqpUrl, queues);
      kit.redis.disconnect();
      if (kit.measured.length) {
        process.stdout.write(`    measured (${title}):\n      ${kit.measured.join('\n      ')}\n`);
      }
    });

    body(kit);
  });
}
