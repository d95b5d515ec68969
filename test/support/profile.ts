import { isCluster } from '../../src/infra/redis-url.js';
/**
 * Which backends the tests run on, chosen the way a user chooses them: DATABASE_URL (and later
 * REDIS_URL, AMQP_URL) present → the services profile on those servers; absent → embedded defaults.
 */
const env = {
  DATABASE_URL: process.env.DATABASE_URL,
  REDIS_URL: process.env.REDIS_URL,
  AMQP_URL: process.env.AMQP_URL,
  // `make test-scale`: the same suites on a quorum queue and a primary with a streaming replica.
  SEARCH_QUEUE_TYPE: process.env.SEARCH_QUEUE_TYPE,
  DATABASE_REPLICA_URLS: process.env.DATABASE_REPLICA_URLS,
};

export const profile = {
  name: env.DATABASE_URL ? 'services' : 'embedded',
  services: Boolean(env.DATABASE_URL),
  env,
};

/**
 * Settings every test app and process starts with, before the profile's and the test's own: cheap
 * bcrypt without a tight bound, and rate budgets far above what a suite sends (every app of a run, and of a run just
 * before on the same Redis, counts against the same client address; the throttling suite sets its
 * own).
 */
export const testDefaults = {
  BCRYPT_COST: '4',
  DATA_DIR: 'memory://',
  RATE_LIMIT_MAX: '1000000',
  SEND_RATE_LIMIT_MAX: '1000000',
  LOGIN_FAIL_LIMIT_MAX: '1000000',
  LOGIN_RATE_LIMIT_MAX: '1000000',
  LOGIN_FAIL_NAME_MAX: '1000000',
  // Suites register and log in many users at once from one address: the hashing bound is tested apart.
  BCRYPT_QUEUE_MAX: '100000',
  BCRYPT_PER_CLIENT_MAX: '100000',
};

/**
 * A suite that puts a TCP proxy in front of Redis's one address: only on a single Redis (a cluster's
 * clients follow the addresses its nodes announce, around any proxy).
 */
export function describeSingleRedis(title: string, suite: (this: Mocha.Suite) => void): void {
  if (!env.REDIS_URL || !isCluster(env.REDIS_URL)) describe(title, suite);
}
