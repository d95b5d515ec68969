import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { setTimeout as sleep } from 'node:timers/promises';

import { startConsumer, type Consumer } from '../src/consumer.js';

import { startApp, type TestApp, seedSql } from './support/app.js';

import {
  createChat,
  join,
  registerAndLogin,
  send,
  unique,
  type User,
  memberOfNewChat,
} from './support/fixtures.js';

import {
  Broker,
  createTask,
  finished,
  hitsKey,
  storedHits,
  taskKey,
  userIdOf,
} from './support/search-helpers.js';

import { eventually, launch, type Launched } from './support/spawn.js';

import { resilienceSuite, silent } from './support/resilience.js';

/** A tag no other suite or earlier run uses: counts on it are exact. */
const freshTag = (prefix: string) => unique(prefix).replace('-', '');

resilienceSuite(
  'search jobs: a consumer killed, redelivered and malformed jobs, foreign and expired tasks',
  ({ amqpUrl, queueName, measured, redis }) => {
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
      let owner: string;
      let chatId: string;
      let worker: Launched | undefined;
      let consumer: Consumer | undefined;

      before(async function () {
        this.timeout(120_000);
        app = await startApp(env, { consumer: false });
        broker = await Broker.connect(amqpUrl);
        user = await registerAndLogin(app.api);
        owner = await userIdOf(app, user);
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
        assert.equal(await redis.hget(taskKey(owner, taskId), 'status'), 'WAITING');

        worker = launch(env, 'consumer');
        await worker.waitForLog((line) => line.msg === 'consumer started', 30_000);
        // Poll the task hash every 5 ms: the kill comes as soon as the consumer has marked it.
        const polling = performance.now();
        await eventually(
          async () => (await redis.hget(taskKey(owner, taskId), 'status')) === 'IN_PROCESS',
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
          await redis.hget(taskKey(owner, taskId), 'status'),
          'IN_PROCESS',
          'the job finished before the kill',
        );
        assert.equal(await redis.exists(hitsKey(owner, taskId)), 0);
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

        assert.equal(await redis.llen(hitsKey(owner, taskId)), expected);
        const hits = await storedHits(redis, owner, taskId);
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
          const { user, chatId, memberId } = await memberOfNewChat(app.api);
          for (const n of [1, 2, 3]) await send(app.api, user, chatId, memberId, `${tag} twice ${n}`);
          await send(app.api, user, chatId, memberId, `${tag} not this one`);

          const taskId = await createTask(app, user, { message: `${tag} twice` });
          const owner = await userIdOf(app, user);
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
          assert.equal(await redis.llen(hitsKey(owner, taskId)), 3);
          assert.equal(new Set((await storedHits(redis, owner, taskId)).map((hit) => hit.messageId)).size, 3);

          // A late redelivery of a finished task is acked without touching it (its expiry is not renewed).
          const ttlBefore = await redis.pttl(taskKey(owner, taskId));
          await sleep(200);
          await broker.publish(queue, job);
          await consumer.stop();
          consumer = undefined;
          assert.equal(await broker.depth(queue), 0, 'every copy was acked');
          assert.equal(await broker.depth(`${queue}.dead`), 0);
          assert.ok(
            (await redis.pttl(taskKey(owner, taskId))) < ttlBefore,
            'the finished task was written again',
          );
          assert.equal(await redis.llen(hitsKey(owner, taskId)), 3);
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
          const { user, chatId, memberId } = await memberOfNewChat(app.api);
          await send(app.api, user, chatId, memberId, `${tag} still served`);
          const taskId = await createTask(app, user, { message: `${tag} served` });
          assert.deepEqual(await finished(app, user, taskId), { status: 'SUCCESS', total: 1 });
        } finally {
          await app.close();
        }
      });
    });
    describe('tasks of other users, unknown and expired tasks', () => {
      const queue = queueName();
      const tag = freshTag('zo');
      let app: TestApp;
      let expiring: TestApp;
      let alice: User;
      let aliceId: string;
      let bob: User;

      before(async () => {
        app = await startApp({ SEARCH_QUEUE: queue });
        expiring = await startApp({ SEARCH_QUEUE: queueName(), SEARCH_RESULT_TTL: '1' });
        alice = await registerAndLogin(app.api);
        aliceId = await userIdOf(app, alice);
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
        assert.equal(await redis.exists(taskKey(aliceId, taskId), hitsKey(aliceId, taskId)), 0);
      });
    });
  },
);
