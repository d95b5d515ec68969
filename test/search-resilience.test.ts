import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../src/infra/redis.js';
import { startConsumer, type Consumer } from '../src/consumer.js';
import { createLogger } from '../src/infra/logger.js';
import { startApp, type TestApp, seedSql } from './support/app.js';
import { createChat, join, registerAndLogin, send, unique, type User } from './support/fixtures.js';
import { describeSingleRedis, profile } from './support/profile.js';
import {
  Broker,
  createTask,
  finished,
  freshQueueName,
  hitsKey,
  redisInspector,
  storedHits,
  taskKey,
  timed,
} from './support/search-helpers.js';
import { eventually, killLeftovers, launch, type Launched } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

/** An outage must be answered with a 503, not a hang (publish waits ≤ 1 s for the broker, then a 2 s confirm timeout). */
const FAST_MS = 3_000;

const silent = () => createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** A tag no other suite or earlier run uses: counts on it are exact. */
const freshTag = (prefix: string) => unique(prefix).replace('-', '');

// Services profile with a broker and a result store only: the suite registers its tests only when
// `profile.services && AMQP_URL && REDIS_URL`. In the embedded profile (or services without RabbitMQ
// and Redis) search jobs run in-process, there is no broker to restart nor a Redis to cut, and this
// file registers nothing.
if (profile.services && process.env.AMQP_URL && process.env.REDIS_URL) {
  const amqpUrl = process.env.AMQP_URL;
  const redisUrl = process.env.REDIS_URL;

  describe('search resilience (RabbitMQ + Redis)', function () {
    this.timeout(120_000);

    /** Every queue this run declared (each test its own, `test.search.<random>`), deleted at the end. */
    const queues = new Set<string>();
    const queueName = () => {
      const name = freshQueueName();
      queues.add(name);
      return name;
    };
    const measured: string[] = [];
    let redis: RedisClient;

    before(() => {
      redis = redisInspector(redisUrl);
    });

    after(async function () {
      this.timeout(120_000);
      await killLeftovers();
      await Broker.deleteQueues(amqpUrl, queues);
      redis.disconnect();
      if (measured.length)
        process.stdout.write(`    measured (search resilience):\n      ${measured.join('\n      ')}\n`);
    });

    describe('a consumer killed in the middle of a job', () => {
      const SEEDED = 50_000;
      const queue = queueName();
      const env = {
        SEARCH_QUEUE: queue,
        SEARCH_MAX_RESULTS: '100000',
        SEARCH_TIMEOUT_MS: '120000',
        SEARCH_PREFETCH: '1',
        // The seeding bulk insert goes through the app's pool: not bound like an API query.
        DB_QUERY_TIMEOUT_MS: '120000',
      };
      const tag = freshTag('zk');
      let app: TestApp;
      let broker: Broker;
      let user: User;
      let chatId: string;
      let worker: Launched | undefined;
      let consumer: Consumer | undefined;

      before(async function () {
        this.timeout(120_000);
        app = await startApp(env, { consumer: false });
        broker = await Broker.connect(amqpUrl);
        user = await registerAndLogin(app.api);
        chatId = await createChat(app.api, user);
        const memberId = await join(app.api, user, chatId);
        // One bulk INSERT: nine in ten messages hold the searched words, the rest only the tag.
        const started = performance.now();
        await seedSql(
          app,
          `INSERT INTO messages (chat_id, member_id, text, created_at)
           SELECT :chatId, :memberId,
                  CASE WHEN g % 10 = 0 THEN :tag || ' haystack only, message ' || g
                       ELSE :tag || ' needle in the haystack, message number ' || g END,
                  now() - (:seeded - g) * interval '1 millisecond'
           FROM generate_series(1, :seeded) AS g`,
          { chatId, memberId, tag, seeded: SEEDED },
        );
        measured.push(
          `seeding ${SEEDED} messages in one chat: ${(performance.now() - started).toFixed(0)} ms`,
        );
      });

      after(async function () {
        this.timeout(60_000);
        await worker?.stop('SIGKILL');
        await consumer?.stop();
        await broker.close();
        // The seeded chat goes away with its messages (ON DELETE CASCADE), keeping the database small.
        await app.service.db.knex('chats').where({ id: chatId }).delete();
        await app.close();
      });

      it('when a consumer is SIGKILLed with the job IN_PROCESS, then a new consumer finishes it: same total as a direct count, no duplicates', async () => {
        const taskId = await createTask(app, user, { message: `${tag} needle`, chat_id: chatId });
        assert.equal(await redis.hget(taskKey(taskId), 'status'), 'WAITING');

        worker = launch(env, 'consumer');
        await worker.waitForLog((line) => line.msg === 'consumer started', 30_000);
        // Poll the task hash every 5 ms: the kill comes as soon as the consumer has marked it.
        const polling = performance.now();
        await eventually(
          async () => (await redis.hget(taskKey(taskId), 'status')) === 'IN_PROCESS',
          30_000,
          5,
        );
        const inProcessAfter = performance.now() - polling;
        worker.child.kill('SIGKILL');
        const exit = await worker.exited;
        assert.equal(exit.signal, 'SIGKILL');
        measured.push(
          `spawned consumer: task IN_PROCESS ${inProcessAfter.toFixed(0)} ms after "consumer started", SIGKILLed at once`,
        );

        // Caught in the middle: nothing stored, the task still IN_PROCESS, the unacked job back on the queue.
        assert.equal(
          await redis.hget(taskKey(taskId), 'status'),
          'IN_PROCESS',
          'the job finished before the kill',
        );
        assert.equal(await redis.exists(hitsKey(taskId)), 0);
        await eventually(async () => (await broker.depth(queue)) === 1, 10_000);

        const [{ count }] = (
          await app.service.db.knex.raw<{ rows: [{ count: string }] }>(
            `SELECT count(*) FROM messages
             WHERE chat_id = ? AND search_vector @@ websearch_to_tsquery('russian', ?)`,
            [chatId, `${tag} needle`],
          )
        ).rows;
        const expected = Math.min(Number(count), app.config.search.maxResults);
        assert.equal(expected, SEEDED * 0.9);

        const started = performance.now();
        consumer = await startConsumer(app.config, silent());
        const status = await finished(app, user, taskId, 90_000);
        measured.push(
          `second consumer finished the ${expected}-hit job in ${(performance.now() - started).toFixed(0)} ms`,
        );
        assert.deepEqual(status, { status: 'SUCCESS', total: expected });

        assert.equal(await redis.llen(hitsKey(taskId)), expected);
        const hits = await storedHits(redis, taskId);
        assert.equal(new Set(hits.map((hit) => hit.messageId)).size, expected, 'duplicate results');
        assert.equal(await broker.depth(queue), 0);
        assert.equal(await broker.depth(`${queue}.dead`), 0);

        // And the API pages through them: the first page is the newest 1000, with a cursor to go on.
        const page = await app.api
          .get(`/v1/chats/search/${taskId}/messages?limit=1000`)
          .set(user.auth)
          .expect(200);
        assert.equal(page.body.messages.length, 1000);
        assert.ok(page.body.next?.iterator);
        assert.match(page.body.messages[0].text, new RegExp(`number ${SEEDED - 1}$`));
      });
    });

    // The machine's own broker is never stopped from a test: the API reaches it through a proxy this
    // test cuts, which is what an API instance sees when the broker goes away (restart, network).
    describe('the broker unreachable between create and consume', () => {
      const queue = queueName();
      const target = new URL(amqpUrl);
      const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
      const tag = freshTag('zb');
      let app: TestApp;
      let user: User;
      let chatId: string;
      let memberId: string;
      let consumer: Consumer | undefined;

      before(async () => {
        await proxy.start();
        app = await startApp(
          { SEARCH_QUEUE: queue, AMQP_URL: proxy.proxiedUrl(amqpUrl) },
          { consumer: false },
        );
        user = await registerAndLogin(app.api);
        chatId = await createChat(app.api, user);
        memberId = await join(app.api, user, chatId);
        await send(app.api, user, chatId, memberId, `${tag} apples and pears`);
        await send(app.api, user, chatId, memberId, `${tag} pears only`);
      });

      after(async function () {
        this.timeout(120_000);
        if (!proxy.listening) await proxy.restore();
        await consumer?.stop();
        await app.close();
        await proxy.close();
      });

      it('when the broker is cut off and comes back, then no queued task is lost; meanwhile search answers 503 fast and chat still works', async () => {
        const queries = [`${tag} apples`, `${tag} pears`, `${tag} -apples`];
        const tasks: string[] = [];
        for (const message of queries) tasks.push(await createTask(app, user, { message }));
        const before = await Broker.connect(amqpUrl);
        assert.equal(await before.depth(queue), 3);
        await before.close();

        await proxy.cut();
        const stoppedAt = performance.now();
        try {
          await timed(measured, 'broker cut off: POST /v1/chats/search (1st)', FAST_MS, () =>
            app.api
              .post('/v1/chats/search')
              .set(user.auth)
              .send({ message: `${tag} apples` })
              .expect(503, { message: 'service-unavailable' }),
          );
          await timed(measured, 'broker cut off: POST /v1/chats/search (2nd)', FAST_MS, () =>
            app.api
              .post('/v1/chats/search')
              .set(user.auth)
              .send({ message: `${tag} pears` })
              .expect(503, { message: 'service-unavailable' }),
          );
          await timed(measured, 'broker cut off: POST message', FAST_MS, () =>
            app.api
              .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
              .set(user.auth)
              .send({ message: `${tag} written while the broker is away` })
              .expect(201),
          );
          const history = await timed(measured, 'broker cut off: GET history', FAST_MS, () =>
            app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200),
          );
          // Oldest first: the message just written is the last of the three.
          assert.equal(history.body.messages.length, 3);
          assert.equal(history.body.messages[2].text, `${tag} written while the broker is away`);
          // The tasks are in Redis, not in the broker: their status still reads.
          const status = await app.api.get(`/v1/chats/search/status/${tasks[0]!}`).set(user.auth).expect(200);
          assert.deepEqual(status.body, { status: 'WAITING' });
        } finally {
          await proxy.restore();
        }
        const startedAt = performance.now();
        measured.push(`broker cut off (cut → restore): ${(startedAt - stoppedAt).toFixed(0)} ms`);

        // The API reconnects by itself: a search is accepted again within seconds.
        let recovered: string | undefined;
        await eventually(
          async () => {
            const res = await app.api
              .post('/v1/chats/search')
              .set(user.auth)
              .send({ message: `${tag} pears` });
            if (res.status === 201) recovered = res.body.task_id as string;
            else assert.equal(res.status, 503);
            return res.status === 201;
          },
          15_000,
          100,
        );
        measured.push(
          `broker back: first 201 from POST /v1/chats/search after ${(performance.now() - startedAt).toFixed(0)} ms`,
        );
        tasks.push(recovered!);

        const after = await Broker.connect(amqpUrl);
        assert.equal(await after.depth(queue), 4, 'the three queued jobs are still there');
        await after.close();

        // The consumer takes them straight from the broker.
        consumer = await startConsumer({ ...app.config, amqpUrl }, silent());
        const totals: (number | undefined)[] = [];
        for (const taskId of tasks) {
          const status = await finished(app, user, taskId);
          assert.equal(status.status, 'SUCCESS', JSON.stringify(status));
          totals.push(status.total);
        }
        // apples: 1; pears: 2 (+1 written during the outage has no pears); -apples: 2 + the outage one.
        assert.deepEqual(totals, [1, 2, 2, 2]);
      });
    });

    describe('tasks of other users, unknown and expired tasks', () => {
      const queue = queueName();
      const tag = freshTag('zo');
      let app: TestApp;
      let expiring: TestApp;
      let alice: User;
      let bob: User;

      before(async () => {
        app = await startApp({ SEARCH_QUEUE: queue });
        expiring = await startApp({ SEARCH_QUEUE: queueName(), SEARCH_RESULT_TTL: '1' });
        alice = await registerAndLogin(app.api);
        bob = await registerAndLogin(app.api);
        const chatId = await createChat(app.api, alice);
        const memberId = await join(app.api, alice, chatId);
        await send(app.api, alice, chatId, memberId, `${tag} private words of alice`);
      });

      after(async () => {
        await expiring.close();
        await app.close();
      });

      const notFound = (api: TestApp['api'], user: User, taskId: string) => [
        api
          .get(`/v1/chats/search/status/${taskId}`)
          .set(user.auth)
          .expect(404, { message: 'task-not-found' }),
        api
          .get(`/v1/chats/search/${taskId}/messages?limit=10`)
          .set(user.auth)
          .expect(404, { message: 'task-not-found' }),
      ];

      it('when another user asks for a task, then status and messages answer 404 task-not-found', async () => {
        const taskId = await createTask(app, alice, { message: `${tag} private` });
        assert.deepEqual(await finished(app, alice, taskId), { status: 'SUCCESS', total: 1 });
        await Promise.all(notFound(app.api, bob, taskId));
        // The owner still reads it: the 404 is about who asks.
        const page = await app.api
          .get(`/v1/chats/search/${taskId}/messages?limit=10`)
          .set(alice.auth)
          .expect(200);
        assert.equal(page.body.messages.length, 1);
      });

      it('when the task id is a random uuid or not a uuid, then status and messages answer 404 task-not-found', async () => {
        await Promise.all(notFound(app.api, alice, randomUUID()));
        await Promise.all(notFound(app.api, alice, 'random_task'));
      });

      it('when SEARCH_RESULT_TTL=1 and 1.5 s pass after SUCCESS, then the task is gone: 404 task-not-found', async () => {
        const taskId = await createTask(expiring, alice, { message: `${tag} words` });
        assert.deepEqual(await finished(expiring, alice, taskId), { status: 'SUCCESS', total: 1 });
        await expiring.api.get(`/v1/chats/search/${taskId}/messages?limit=10`).set(alice.auth).expect(200);
        await sleep(1_500);
        await Promise.all(notFound(expiring.api, alice, taskId));
        assert.equal(await redis.exists(taskKey(taskId), hitsKey(taskId)), 0);
      });
    });

    describeSingleRedis('Redis cut off (TCP proxy in front of it)', () => {
      const target = new URL(redisUrl);
      const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      const tag = freshTag('zr');
      let app: TestApp;
      let user: User;
      let chatId: string;
      let memberId: string;

      before(async () => {
        await proxy.start();
        app = await startApp({ SEARCH_QUEUE: queueName(), REDIS_URL: proxy.proxiedUrl(redisUrl) });
        user = await registerAndLogin(app.api);
        chatId = await createChat(app.api, user);
        memberId = await join(app.api, user, chatId);
        await send(app.api, user, chatId, memberId, `${tag} before the outage`);
      });

      afterEach(async () => {
        // A failed test must not leave Redis cut for the next one.
        if (!proxy.listening) await proxy.restore();
      });

      after(async () => {
        await app.close();
        await proxy.close();
      });

      it('when Redis is cut, then search answers 503 fast while chat works; when it is back, search works again', async () => {
        const before = await createTask(app, user, { message: `${tag} outage` });
        assert.equal((await finished(app, user, before)).status, 'SUCCESS');

        await proxy.cut();
        await timed(measured, 'redis cut: POST /v1/chats/search (1st)', FAST_MS, () =>
          app.api
            .post('/v1/chats/search')
            .set(user.auth)
            .send({ message: `${tag} outage` })
            .expect(503, { message: 'service-unavailable' }),
        );
        await timed(measured, 'redis cut: POST /v1/chats/search (2nd)', FAST_MS, () =>
          app.api
            .post('/v1/chats/search')
            .set(user.auth)
            .send({ message: `${tag} outage` })
            .expect(503, { message: 'service-unavailable' }),
        );
        await timed(measured, 'redis cut: GET search status', FAST_MS, () =>
          app.api
            .get(`/v1/chats/search/status/${before}`)
            .set(user.auth)
            .expect(503, { message: 'service-unavailable' }),
        );
        await timed(measured, 'redis cut: POST message', FAST_MS, () =>
          app.api
            .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
            .set(user.auth)
            .send({ message: `${tag} during the outage` })
            .expect(201),
        );
        const history = await timed(measured, 'redis cut: GET history', FAST_MS, () =>
          app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200),
        );
        assert.equal(history.body.messages.length, 2);

        await proxy.restore();
        const restoredAt = performance.now();
        let taskId: string | undefined;
        await eventually(
          async () => {
            const res = await app.api
              .post('/v1/chats/search')
              .set(user.auth)
              .send({ message: `${tag} outage` });
            if (res.status === 201) taskId = res.body.task_id as string;
            else assert.equal(res.status, 503);
            return res.status === 201;
          },
          15_000,
          100,
        );
        measured.push(
          `redis back: first 201 from POST /v1/chats/search after ${(performance.now() - restoredAt).toFixed(0)} ms`,
        );
        assert.deepEqual(await finished(app, user, taskId!), { status: 'SUCCESS', total: 2 });
      });

      it('when Redis is cut as a consumer takes a job, then the job waits on the queue (not dead-lettered) and succeeds once Redis is back', async () => {
        const queue = queueName();
        const idle = await startApp(
          { SEARCH_QUEUE: queue, REDIS_URL: proxy.proxiedUrl(redisUrl) },
          { consumer: false },
        );
        const broker = await Broker.connect(amqpUrl);
        let consumer: Consumer | undefined;
        try {
          await send(idle.api, user, chatId, memberId, `${tag} blip words`);
          const taskId = await createTask(idle, user, { message: `${tag} blip` });
          await proxy.cut();
          consumer = await startConsumer(idle.config, silent());
          // The consumer takes the job at once and cannot mark it; a couple of seconds of outage.
          await sleep(2_000);
          assert.equal(await broker.depth(`${queue}.dead`), 0, 'the job was dead-lettered during the outage');
          assert.equal(await redis.hget(taskKey(taskId), 'status'), 'WAITING');

          await proxy.restore();
          const restoredAt = performance.now();
          let status: unknown;
          await eventually(
            async () => {
              const res = await idle.api.get(`/v1/chats/search/status/${taskId}`).set(user.auth);
              status = res.body;
              return res.status === 200 && res.body.status === 'SUCCESS';
            },
            15_000,
            100,
          );
          measured.push(
            `redis back: job taken during the outage SUCCESS after ${(performance.now() - restoredAt).toFixed(0)} ms`,
          );
          assert.deepEqual(status, { status: 'SUCCESS', total: 1 });
          assert.equal(await broker.depth(`${queue}.dead`), 0);
        } finally {
          await consumer?.stop();
          await broker.close();
          await idle.close();
        }
      });
    });

    describe('RabbitMQ cut off (TCP proxy in front of it)', () => {
      const target = new URL(amqpUrl);
      const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5672) });

      after(async () => {
        await proxy.close();
      });

      it('when searches are refused with 503 while RabbitMQ is away, then none leaves a listener behind (no MaxListenersExceededWarning) and search works once it is back', async () => {
        await proxy.start();
        const app = await startApp(
          { SEARCH_QUEUE: queueName(), AMQP_URL: proxy.proxiedUrl(amqpUrl) },
          { consumer: false },
        );
        const warnings: string[] = [];
        const onWarning = (warning: Error) => {
          if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning.message);
        };
        process.on('warning', onWarning);
        try {
          const user = await registerAndLogin(app.api);
          const search = () =>
            app.api.post('/v1/chats/search').set(user.auth).send({ message: 'while the broker is away' });
          // Connected first, so the outage is one of a broker that was there.
          await eventually(async () => (await search()).status === 201, 15_000, 100);

          await proxy.cut();
          // 15 refusals, 5 at a time: more than the 10 listeners Node warns at, fewer in any one batch,
          // so only listeners that outlive their request can add up to a warning.
          for (let batch = 0; batch < 3; batch++) {
            const answers = await Promise.all(Array.from({ length: 5 }, () => search()));
            assert.deepEqual(
              answers.map((res) => res.status),
              [503, 503, 503, 503, 503],
            );
          }
          // A warning is emitted on a later tick than the listener that causes it.
          await new Promise((resolve) => setImmediate(resolve));
          assert.deepEqual(warnings, []);

          await proxy.restore();
          await eventually(async () => (await search()).status === 201, 15_000, 100);
          assert.deepEqual(warnings, []);
        } finally {
          process.off('warning', onWarning);
          if (!proxy.listening) await proxy.restore();
          await app.close();
        }
      });
    });

    describe('redelivered and malformed jobs', () => {
      const tag = freshTag('zd');
      let broker: Broker;

      before(async () => {
        broker = await Broker.connect(amqpUrl);
      });

      after(async () => {
        await broker.close();
      });

      it('when the same job is delivered twice (and again after SUCCESS), then the task succeeds with one copy of the results', async () => {
        const queue = queueName();
        const app = await startApp({ SEARCH_QUEUE: queue }, { consumer: false });
        let consumer: Consumer | undefined;
        try {
          const user = await registerAndLogin(app.api);
          const chatId = await createChat(app.api, user);
          const memberId = await join(app.api, user, chatId);
          for (const n of [1, 2, 3]) await send(app.api, user, chatId, memberId, `${tag} twice ${n}`);
          await send(app.api, user, chatId, memberId, `${tag} not this one`);

          const taskId = await createTask(app, user, { message: `${tag} twice` });
          // The job exactly as the API published it, taken off the queue and put back twice.
          const job = await broker.take(queue);
          assert.ok(job);
          assert.equal((JSON.parse(job.toString()) as { taskId: string }).taskId, taskId);
          await broker.publish(queue, job);
          await broker.publish(queue, job);
          assert.equal(await broker.depth(queue), 2);

          // Prefetch 4: both copies are in hand at once and run side by side.
          consumer = await startConsumer(app.config, silent());
          assert.deepEqual(await finished(app, user, taskId), { status: 'SUCCESS', total: 3 });
          await eventually(async () => (await broker.depth(queue)) === 0);
          assert.equal(await redis.llen(hitsKey(taskId)), 3);
          assert.equal(new Set((await storedHits(redis, taskId)).map((hit) => hit.messageId)).size, 3);

          // A late redelivery of a finished task is acked without touching it (its expiry is not renewed).
          const ttlBefore = await redis.pttl(taskKey(taskId));
          await sleep(200);
          await broker.publish(queue, job);
          await consumer.stop();
          consumer = undefined;
          assert.equal(await broker.depth(queue), 0, 'every copy was acked');
          assert.equal(await broker.depth(`${queue}.dead`), 0);
          assert.ok((await redis.pttl(taskKey(taskId))) < ttlBefore, 'the finished task was written again');
          assert.equal(await redis.llen(hitsKey(taskId)), 3);
          const page = await app.api
            .get(`/v1/chats/search/${taskId}/messages?limit=10`)
            .set(user.auth)
            .expect(200);
          assert.deepEqual(
            (page.body.messages as { text: string }[]).map((m) => m.text),
            [3, 2, 1].map((n) => `${tag} twice ${n}`),
          );
        } finally {
          await consumer?.stop();
          await app.close();
        }
      });

      it('when a malformed message is published to the queue, then it ends up in the dead-letter queue', async () => {
        const queue = queueName();
        const app = await startApp({ SEARCH_QUEUE: queue });
        try {
          // The consumer declares its queues once connected, which may come after startConsumer resolves.
          await eventually(() => Broker.exists(amqpUrl, queue), 10_000);
          await broker.publish(queue, Buffer.from('{not json'));
          await broker.publish(queue, Buffer.from(JSON.stringify({ hello: 'not a job' })));
          await eventually(async () => (await broker.depth(`${queue}.dead`)) === 2, 10_000);
          assert.equal(await broker.depth(queue), 0);
          const dead = [await broker.take(`${queue}.dead`), await broker.take(`${queue}.dead`)];
          assert.deepEqual(dead.map((content) => content?.toString()).sort(), [
            '{"hello":"not a job"}',
            '{not json',
          ]);

          // The consumer is not stuck on them: a real job still goes through.
          const user = await registerAndLogin(app.api);
          const chatId = await createChat(app.api, user);
          const memberId = await join(app.api, user, chatId);
          await send(app.api, user, chatId, memberId, `${tag} still served`);
          const taskId = await createTask(app, user, { message: `${tag} served` });
          assert.deepEqual(await finished(app, user, taskId), { status: 'SUCCESS', total: 1 });
        } finally {
          await app.close();
        }
      });
    });
  });
}
