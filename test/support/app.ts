import knex from 'knex';
import supertest from 'supertest';
import type { Test } from 'supertest';
import { createService, type Service } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { startConsumer, type Consumer } from '../../src/consumer.js';
import { createLogger } from '../../src/infra/logger.js';
import { assertMatchesSpec } from './spec.js';
import { profile, testDefaults } from './profile.js';
import { Broker, freshQueueName } from './search-helpers.js';

export interface Api {
  get(url: string): Test;
  post(url: string): Test;
  put(url: string): Test;
  patch(url: string): Test;
  delete(url: string): Test;
  options(url: string): Test;
}

export interface TestApp {
  service: Service;
  /** The search consumer started beside the API when AMQP_URL is set (as `main.js consumer` would run). */
  consumer?: Consumer;
  config: Config;
  api: Api;
  close(): Promise<void>;
}

/** An HTTP client on the app in-process: every response it gets is checked against swagger.yml. */
export function apiFor(handler: Parameters<typeof supertest>[0]): Api {
  const agent = supertest(handler);
  const method =
    (name: 'get' | 'post' | 'put' | 'patch' | 'delete' | 'options') =>
    (url: string): Test =>
      agent[name](url).expect((res) => assertMatchesSpec(name, url, res));
  return {
    get: method('get'),
    post: method('post'),
    put: method('put'),
    patch: method('patch'),
    delete: method('delete'),
    options: method('options'),
  };
}

/**
 * Builds the real app on the current profile's settings plus `env` (embedded: a fresh in-memory
 * PGlite unless DATA_DIR is given; services: the DATABASE_URL / REDIS_URL / AMQP_URL of the run).
 * With AMQP_URL a search consumer runs beside it unless `options.consumer` is false.
 */
export async function startApp(
  env: Record<string, string | undefined> = {},
  options: { consumer?: boolean } = {},
): Promise<TestApp> {
  const config = loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...testDefaults,
    // Each app its own queue: a job is taken only by the consumer started with the same settings.
    SEARCH_QUEUE: freshQueueName(),
    ...profile.env,
    ...env,
  });
  const service = await createService(config, createLogger(config.logLevel));
  await service.migrated;
  const consumer =
    config.amqpUrl && options.consumer !== false
      ? await startConsumer(config, createLogger(config.logLevel))
      : undefined;
  return {
    service,
    consumer,
    config,
    api: apiFor(service.app.callback()),
    async close() {
      await consumer?.stop();
      await service.close();
      if (config.amqpUrl) await Broker.deleteQueues(config.amqpUrl, [config.search.queue]);
    },
  };
}

let shared: Promise<TestApp> | undefined;

/** One app for the suites that need no special settings (closed by the root hook). */
export function sharedApp(): Promise<TestApp> {
  shared ??= startApp();
  return shared;
}

export async function closeSharedApp(): Promise<void> {
  if (shared) await (await shared).close();
  shared = undefined;
}

/**
 * Runs a large seeding statement. On Postgres it gets a connection of its own without the API's short
 * query timeout: on a busy machine a bulk INSERT of tens of thousands of rows can outlast it.
 */
export async function seedSql(app: TestApp, sql: string, bindings: Record<string, unknown> | unknown[]) {
  if (app.service.db.kind === 'embedded') {
    await app.service.db.knex.raw(sql, bindings as never);
    return;
  }
  const seeding = knex({ client: 'pg', connection: profile.env.DATABASE_URL, pool: { min: 0, max: 1 } });
  try {
    await seeding.raw(sql, bindings as never);
  } finally {
    await seeding.destroy();
  }
}

/**
 * An app of its own, with these settings, for the enclosing describe: started before its tests,
 * closed after them. Call the returned function inside a test to get it.
 */
export function appWith(env: Record<string, string>): () => TestApp {
  let app: TestApp | undefined;
  before(async () => {
    app = await startApp(env);
  });
  after(async () => {
    await app?.close();
  });
  return () => {
    if (!app) throw new Error('appWith: used outside a test of its describe');
    return app;
  };
}

/**
 * Two apps with the same settings, so on the same Postgres and Redis (two instances of the service),
 * for the enclosing describe; call a() and b() inside its tests.
 */
export function twoApps(): { a: () => TestApp; b: () => TestApp } {
  let apps: [TestApp, TestApp] | undefined;
  before(async () => {
    apps = await Promise.all([startApp(), startApp()]);
  });
  after(async () => {
    if (apps) await Promise.all(apps.map((app) => app.close()));
  });
  const get = (index: 0 | 1) => () => {
    if (!apps) throw new Error('twoApps: used outside a test of its describe');
    return apps[index];
  };
  return { a: get(0), b: get(1) };
}
