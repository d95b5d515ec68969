import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createService, type Service } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createDatabase, type Database } from '../src/infra/db.js';
import { createLogger } from '../src/infra/logger.js';
import type { ResultStore } from '../src/infra/results.js';
import { searchBackends } from '../src/modules/search/backends.js';
import type { StoredHit } from '../src/modules/search/model.js';
import { createSearchDatabase, createSearchWorker } from '../src/modules/search/worker.js';
import { apiFor, startApp, type TestApp } from './support/app.js';
import { send, unique, type User, memberOfNewChat } from './support/fixtures.js';
import { profile, testDefaults } from './support/profile.js';
import { eventually, spawnApi, type LogLine } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

function proxyFor(databaseUrl: string): TcpProxy {
  const target = new URL(databaseUrl);
  return new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
}

/** Figures printed at the end of the suite (for the record, never asserted). */
const measured: string[] = [];

after(() => {
  if (measured.length) process.stdout.write(`    measured:\n      ${measured.join('\n      ')}\n`);
});

async function measure<T>(label: string, work: () => PromiseLike<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    measured.push(`${label}: ${(performance.now() - started).toFixed(0)} ms`);
  }
}

// Faults staged with a TCP proxy in front of the PostgreSQL server of DATABASE_URL: services only.
if (profile.services) {
  const databaseUrl = process.env.DATABASE_URL!;

  describe('database faults: a frozen database', function () {
    this.timeout(60_000);
    const proxy = proxyFor(databaseUrl);
    let app: TestApp;
    let user: User;
    let chatId: string;
    let memberId: string;
    let direct: pg.Client;

    before(async () => {
      await proxy.start();
      app = await startApp({ DATABASE_URL: proxy.proxiedUrl(databaseUrl) });
      ({ user, chatId, memberId } = await memberOfNewChat(app.api));
      await send(app.api, user, chatId, memberId, 'before the freeze');
      direct = new pg.Client({ connectionString: databaseUrl });
      await direct.connect();
    });

    afterEach(async () => {
      // Every test leaves the database reachable (and the pool fresh) for the next one.
      proxy.thaw();
      await proxy.cut();
      await proxy.restore();
    });

    after(async () => {
      await direct.end();
      await app.close();
      await proxy.close();
    });

    it('when new connections get no handshake reply, then send, join, history and /ping_db answer 503 service-unavailable', async () => {
      // The pool's connections are dropped: every request has to open a new one, into the freeze.
      await proxy.cut();
      await proxy.restore();
      proxy.freeze();
      const statuses = await measure('frozen handshake: 4 requests', () =>
        Promise.all([
          app.api
            .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
            .set(user.auth)
            .send({ message: 'into the freeze' })
            .then((res) => ['send', res.status, res.body.message]),
          app.api
            .post(`/v1/chats/${chatId}/users`)
            .set(user.auth)
            .send({ user_name: unique('member') })
            .then((res) => ['join', res.status, res.body.message]),
          app.api
            .get(`/v1/chats/${chatId}/messages?limit=${1 + Math.floor(Math.random() * 90)}&x=1`)
            .set(user.auth)
            .then((res) => ['history', res.status, res.body.message]),
          app.api.get('/ping_db').then((res) => ['ping_db', res.status, res.body.message]),
        ]),
      );
      assert.deepEqual(statuses, [
        ['send', 503, 'service-unavailable'],
        ['join', 503, 'service-unavailable'],
        ['history', 503, 'service-unavailable'],
        ['ping_db', 503, 'service-unavailable'],
      ]);
    });

    const where = [
      { held: 'in the network', delivered: false },
      { held: 'at the server (delivered while it stalls)', delivered: true },
    ];
    for (const { held, delivered } of where) {
      it(`when sends answer 503 during a freeze with the writes held ${held}, then none of them is stored once the database thaws`, async () => {
        // Open connections in the pool: the inserts are written to them and held in the network.
        await Promise.all(
          [1, 2, 3, 4, 5].map((i) => send(app.api, user, chatId, memberId, `warm-up ${i} ${randomUUID()}`)),
        );
        proxy.freeze({ delivered });
        const texts = [1, 2, 3, 4, 5].map((i) => `during the freeze ${i} ${randomUUID()}`);
        const statuses = await measure(`frozen connection (${held}): 5 sends answered`, () =>
          Promise.all(
            texts.map((text) =>
              app.api
                .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
                .set(user.auth)
                .send({ message: text })
                .then((res) => res.status),
            ),
          ),
        );
        measured.push(`frozen connection (${held}): send statuses ${statuses.join(' ')}`);
        assert.ok(
          statuses.every((status) => status >= 500),
          `every send during the freeze answers an error: ${statuses.join(' ')}`,
        );
        proxy.thaw();
        // Whatever was held is delivered now; give it ample time to run, looking the whole time.
        const deadline = Date.now() + 3_000;
        let stored: string[] = [];
        while (Date.now() < deadline && stored.length === 0) {
          const { rows } = await direct.query<{ text: string }>(
            'SELECT text FROM messages WHERE text = ANY($1)',
            [texts],
          );
          stored = rows.map((row) => row.text);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        measured.push(
          `sends answered 503 but stored after the thaw (${held}): ${stored.length} of ${texts.length}`,
        );
        assert.deepEqual(stored, []);
        // And the service works again.
        await eventually(async () => (await app.api.get('/ping_db')).status === 200, 10_000);
        await send(app.api, user, chatId, memberId, `after the thaw ${randomUUID()}`);
      });
    }

    it('when a send waits on a lock past its deadline and answers 503, then it is not stored once the lock is released', async () => {
      // A lock on the sender's member row: the insert waits for it past its deadline.
      const memberRow = await direct.query<{ id: string }>('SELECT id FROM members WHERE id = $1', [
        memberId,
      ]);
      assert.equal(memberRow.rowCount, 1);
      const text = `behind a lock ${randomUUID()}`;
      await direct.query('BEGIN');
      try {
        await direct.query('SELECT id FROM members WHERE id = $1 FOR UPDATE', [memberId]);
        const res = await measure('send waiting on a lock: answered', () =>
          app.api
            .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
            .set(user.auth)
            .send({ message: text }),
        );
        assert.equal(res.status, 503);
      } finally {
        await direct.query('COMMIT');
      }
      // Once the lock is gone an insert still waiting would commit at once: look for a while.
      const deadline = Date.now() + 2_000;
      let stored = 0;
      while (Date.now() < deadline && stored === 0) {
        stored = (await direct.query('SELECT 1 FROM messages WHERE text = $1', [text])).rowCount ?? 0;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      measured.push(`send answered 503 behind a lock, stored after the release: ${stored}`);
      assert.equal(stored, 0);
    });
  });

  describe('database faults: a busy process', function () {
    this.timeout(30_000);

    it("when the process is busy past a query's timeout while its answer arrives, then the query succeeds: the answer is read before the timeout counts", async () => {
      const config = loadConfig({
        ...testDefaults,
        ...profile.env,
        DB_QUERY_TIMEOUT_MS: '300',
        REDIS_URL: undefined,
        AMQP_URL: undefined,
      });
      const db = await createDatabase(config, createLogger('silent'));
      try {
        // A connection in the pool, so that the next query is written at once.
        await db.knex.raw('SELECT 1');
        let busyMs = 0;
        // Once the query is on its way, the process is busy for longer than the timeout (a send
        // that committed must not answer 503 because the process was late to read the answer).
        db.knex.once('query', () =>
          setImmediate(() => {
            const started = performance.now();
            while (performance.now() - started < 800);
            busyMs = performance.now() - started;
          }),
        );
        const { rows } = await db.knex.raw<{ rows: { n: number }[] }>('SELECT 42 AS n');
        assert.ok(busyMs >= 800, `the process was busy ${busyMs} ms`);
        assert.deepEqual(rows, [{ n: 42 }]);
      } finally {
        await db.close();
      }
    });
  });

  describe('database faults: search jobs', function () {
    this.timeout(60_000);
    const proxy = proxyFor(databaseUrl);
    const logger = createLogger('silent');
    const config = loadConfig({
      ...testDefaults,
      ...profile.env,
      AMQP_URL: undefined,
      REDIS_URL: undefined,
      SEARCH_TIMEOUT_MS: '1000',
      SEARCH_MAX_ATTEMPTS: '8',
    });
    let db: Database;
    let results: ResultStore<StoredHit>;
    let job: ReturnType<typeof createSearchWorker>;

    before(async () => {
      await proxy.start();
      const proxied = { ...config, database: { kind: 'url' as const, url: proxy.proxiedUrl(databaseUrl) } };
      db = await createSearchDatabase(proxied, logger);
      // The store the search module itself builds for these settings (in memory: no REDIS_URL).
      results = searchBackends(proxied, logger).results;
      job = createSearchWorker(proxied, db, results, logger);
    });

    afterEach(async () => {
      proxy.thaw();
      await proxy.cut();
      await proxy.restore();
    });

    after(async () => {
      await db.close();
      await results.close();
      await proxy.close();
    });

    /** Runs one job through a freeze: thawed once the worker has noticed (or the job has ended). */
    async function jobThroughFreeze(): Promise<string | undefined> {
      const taskId = randomUUID();
      const userId = randomUUID();
      await results.create({ id: taskId, ownerId: userId, status: 'WAITING' });
      proxy.freeze();
      let ended = false;
      const running = job({ taskId, userId, query: 'freeze' }).finally(() => {
        ended = true;
      });
      running.catch(() => undefined);
      await eventually(() => Promise.resolve(ended || db.monitor.isDown), 20_000);
      proxy.thaw();
      await running.catch(() => undefined);
      const task = await results.get(taskId, userId);
      return task?.status === 'FAILED' ? `FAILED ${task.error}` : task?.status;
    }

    it('when a job meets a database that accepts connections but never answers the handshake, then it is retried and succeeds after the thaw', async () => {
      await proxy.cut();
      await proxy.restore();
      assert.equal(await measure('search job, frozen handshake', jobThroughFreeze), 'SUCCESS');
    });

    it('when the database freezes while a job queries it, then the job is retried as an outage (not failed as a timeout) and succeeds after the thaw', async () => {
      assert.ok(await db.ping(), 'a pooled connection to freeze');
      assert.equal(await measure('search job, frozen query', jobThroughFreeze), 'SUCCESS');
    });
  });

  describe('database faults: a reachable but wrong database', function () {
    this.timeout(60_000);

    /** DATABASE_URL with another database name or role, neither of which exists on the server. */
    function wrongUrl(change: (url: URL) => void): string {
      const url = new URL(databaseUrl);
      change(url);
      return url.toString();
    }
    const missingDatabase = `messenger_missing_${randomUUID().slice(0, 8)}`;
    const cases = [
      {
        what: 'the database does not exist',
        url: wrongUrl((url) => (url.pathname = `/${missingDatabase}`)),
        says: new RegExp(`database "?${missingDatabase}"? does not exist.*make migrate.*DATABASE_URL`),
      },
      {
        what: 'the role does not exist',
        url: wrongUrl((url) => (url.username = `nobody_${randomUUID().slice(0, 8)}`)),
        says: /role "?nobody_[0-9a-f]+"? .*(does not exist|rejected).*DATABASE_URL/,
      },
    ];

    for (const { what, url, says } of cases) {
      it(`when ${what}, then /ping_db answers 503 and the log says once, in one line, what is wrong`, async () => {
        const launched = await spawnApi({ DATABASE_URL: url, AMQP_URL: undefined, REDIS_URL: undefined });
        try {
          const { api } = launched;
          await api.get('/ping_db').expect(503, { message: 'service-unavailable' });
          await api.get('/ping_db').expect(503, { message: 'service-unavailable' });
          // Several migration retries (500 ms, 1 s, 2 s apart) happen meanwhile.
          await new Promise((resolve) => setTimeout(resolve, 2_500));
          await api.get('/ping_db').expect(503, { message: 'service-unavailable' });
        } finally {
          await launched.stop();
        }
        const logs = launched.logs();
        const show = (lines: LogLine[]) => lines.map((line) => JSON.stringify(line)).join('\n');
        // Beside the access log's line per request (5xx at error level), which says nothing of why.
        const errors = logs.filter((line) => line.level >= 40 && line.msg !== 'request');
        assert.equal(errors.length, 1, `warnings and errors:\n${show(errors)}`);
        assert.match(errors[0]!.msg ?? '', says);
        assert.equal(JSON.stringify(errors[0]).includes('    at '), false, 'no stack trace');
      });
    }
  });
}

describe('readiness', function () {
  this.timeout(60_000);

  it('when the app serves /v1, then GET /ready answers 200 and /ping 200', async () => {
    const app = await startApp();
    try {
      await app.service.migrated;
      await app.api.get('/ready').expect(200, { status: 'ok' });
      await app.api.get('/ping').expect(200, { status: 'ok' });
    } finally {
      await app.close();
    }
  });

  if (profile.services) {
    const databaseUrl = process.env.DATABASE_URL!;

    it('when the schema check cannot run yet, then /ready answers 503 while /ping answers 200, and 200 once /v1 serves', async () => {
      const proxy = proxyFor(databaseUrl);
      await proxy.start();
      await proxy.cut();
      const config = loadConfig({
        ...testDefaults,
        ...profile.env,
        AMQP_URL: undefined,
        REDIS_URL: undefined,
        DATABASE_URL: proxy.proxiedUrl(databaseUrl),
      });
      let service: Service | undefined;
      try {
        service = await createService(config, createLogger('silent'));
        const api = apiFor(service.app.callback());
        await api.get('/ping').expect(200);
        await api.get('/ready').expect(503, { message: 'service-unavailable' });
        await api.get('/v1/chats/x/messages').expect(503, { message: 'service-unavailable' });
        await proxy.restore();
        await eventually(async () => (await api.get('/ready')).status === 200, 20_000);
        await api.get('/v1/chats/x/messages').expect(401);
      } finally {
        await service?.close();
        await proxy.close();
      }
    });

    it('when the schema is already up to date, then the check at start-up takes one query, not a migration run', async () => {
      const queries: string[] = [];
      const config = loadConfig({
        ...testDefaults,
        ...profile.env,
        AMQP_URL: undefined,
        REDIS_URL: undefined,
      });
      const db = await createDatabase(config, createLogger('silent'));
      try {
        db.knex.on('query', (query: { sql: string }) => queries.push(query.sql));
        await measure('schema check, up to date', () => db.migrate());
        assert.equal(queries.length, 1, queries.join('\n'));
      } finally {
        await db.close();
      }
    });
  }
});
