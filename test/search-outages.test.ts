import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startConsumer, type Consumer } from '../src/consumer.js';

import { startApp, type TestApp } from './support/app.js';

import { registerAndLogin, send, unique, type User, memberOfNewChat } from './support/fixtures.js';

import { Broker, createTask, finished, taskKey, timed, userIdOf } from './support/search-helpers.js';

import { eventually } from './support/spawn.js';

import { TcpProxy } from './support/tcp-proxy.js';

import { resilienceSuite, silent } from './support/resilience.js';
import { describeSingleRedis } from './support/profile.js';

/** An outage must be answered with a 503, not a hang (publish waits ≤ 1 s for the broker, then a 2 s confirm timeout). */
const FAST_MS = 3_000;

/** A tag no other suite or earlier run uses: counts on it are exact. */
const freshTag = (prefix: string) => unique(prefix).replace('-', '');

resilienceSuite(
  'search outages: the broker or Redis unreachable',
  ({ amqpUrl, redisUrl, queueName, measured, redis }) => {
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
        ({ user, chatId, memberId } = await memberOfNewChat(app.api));
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
        ({ user, chatId, memberId } = await memberOfNewChat(app.api));
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
          assert.equal(await redis.hget(taskKey(await userIdOf(idle, user), taskId), 'status'), 'WAITING');

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
          // A user per request of a batch: each stays far below the per-user cap on unfinished tasks.
          const users = await Promise.all(Array.from({ length: 6 }, () => registerAndLogin(app.api)));
          const search = (user = users[5]!) =>
            app.api.post('/v1/chats/search').set(user.auth).send({ message: 'while the broker is away' });
          // Connected first, so the outage is one of a broker that was there.
          await eventually(async () => (await search()).status === 201, 15_000, 100);

          await proxy.cut();
          // 15 refusals, 5 at a time: more than the 10 listeners Node warns at, fewer in any one batch,
          // so only listeners that outlive their request can add up to a warning.
          for (let batch = 0; batch < 3; batch++) {
            const answers = await Promise.all(users.slice(0, 5).map((user) => search(user)));
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
  },
);
