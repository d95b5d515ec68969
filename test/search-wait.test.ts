import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startConsumer } from '../src/consumer.js';
import { createLogger } from '../src/infra/logger.js';
import { createResultStore, TaskLimitError, type ResultStore } from '../src/infra/results.js';
import { sharedApp, startApp, type TestApp } from './support/app.js';
import { badParameters, memberOfNewChat, registerAndLogin, send, unique } from './support/fixtures.js';
import { profile } from './support/profile.js';
import { createTask, freshQueueName } from './support/search-helpers.js';
import { eventually } from './support/spawn.js';

const LIMITS = { maxLive: 4, maxStored: 30, maxBytes: 1_000_000, reserveBytes: 1000 };

/** The store once it answers: a store fails fast (no offline queue) while it connects. */
async function connected(store: ResultStore<string>): Promise<ResultStore<string>> {
  await eventually(
    () =>
      store.get(randomUUID(), null).then(
        () => true,
        () => false,
      ),
    10_000,
  );
  return store;
}

/** A word no other message of any run holds, so a search for it finds exactly what this test sent. */
const freshWord = () => `zw${randomUUID().replace(/-/g, '').slice(0, 12)}`;

describe('search status long poll (GET …/status/{task_id}?wait=)', function () {
  this.timeout(60_000);
  let app: TestApp;

  before(async () => {
    app = await sharedApp();
  });

  it('when a client waits on a new task, then one request answers with SUCCESS and the total', async () => {
    const { user, chatId, memberId } = await memberOfNewChat(app.api);
    const word = freshWord();
    await send(app.api, user, chatId, memberId, `first ${word}`);
    await send(app.api, user, chatId, memberId, `second ${word}`);
    const taskId = await createTask(app, user, { message: word });
    const res = await app.api.get(`/v1/chats/search/status/${taskId}?wait=30`).set(user.auth).expect(200);
    assert.deepEqual(res.body, { status: 'SUCCESS', total: 2 });
    // A finished task answers at once with or without wait.
    const again = await app.api.get(`/v1/chats/search/status/${taskId}?wait=30`).set(user.auth).expect(200);
    assert.deepEqual(again.body, res.body);
  });

  it('when wait is not a whole number of seconds in 0..60, then 400 bad-parameters naming wait', async () => {
    const user = await registerAndLogin(app.api);
    const taskId = await createTask(app, user, { message: freshWord() });
    for (const wait of ['61', '-1', 'soon', '1.5']) {
      await app.api
        .get(`/v1/chats/search/status/${taskId}?wait=${wait}`)
        .set(user.auth)
        .expect(400)
        .expect(badParameters(/wait/));
    }
  });

  it("when someone else waits on a user's task, then 404 task-not-found at once", async () => {
    const [owner, other] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
    const taskId = await createTask(app, owner, { message: freshWord() });
    const res = await app.api.get(`/v1/chats/search/status/${taskId}?wait=30`).set(other.auth).expect(404);
    assert.equal(res.body.message, 'task-not-found');
  });
});

/**
 * Finishing a task (in Redis, one script): the outcome replaces earlier results, and the task moves
 * from its owner's unfinished tasks to the finished ones, which count against SEARCH_MAX_STORED_TASKS
 * until they expire; a task that is gone when its job finishes is not counted.
 */
describe('result store: finishing a task', function () {
  this.timeout(30_000);
  const redisUrl = profile.env.REDIS_URL;
  const stores: ResultStore<string>[] = [];
  const open = (limits = LIMITS) => {
    const store = createResultStore<string>(
      { redisUrl, ttlSeconds: 60, name: 'test results', keyPrefix: unique('finish'), limits },
      createLogger('silent'),
    );
    stores.push(store);
    return store;
  };
  const task = (ownerId: string) => ({ id: randomUUID(), ownerId, status: 'WAITING' as const });
  const refusal = (error: unknown) => {
    assert.ok(error instanceof TaskLimitError, `not a TaskLimitError: ${String(error)}`);
    return error.reason;
  };

  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  it('when a task succeeds with 1,234 results, then all are read back in order; a second finish replaces them', async () => {
    const store = await connected(open());
    const owner = randomUUID();
    const mine = task(owner);
    await store.create(mine);
    const results = Array.from({ length: 1234 }, (_, i) => `hit-${i}`);
    await store.succeed(mine.id, owner, results);
    assert.deepEqual(await store.results(mine.id, owner, 0, 2000), results);
    assert.deepEqual(await store.results(mine.id, owner, 1000, 300), results.slice(1000, 1300));
    const stored = await store.get(mine.id, owner);
    assert.equal(stored?.status, 'SUCCESS', 'status after the first finish');
    assert.equal(stored.total, 1234);

    await store.succeed(mine.id, owner, ['again']);
    assert.deepEqual(await store.results(mine.id, owner, 0, 2000), ['again']);
    assert.equal((await store.get(mine.id, owner))?.total, 1);
  });

  it('when tasks finish, then they count as stored: past SEARCH_MAX_STORED_TASKS a new one is refused', async () => {
    const store = await connected(open({ ...LIMITS, maxLive: 2, maxStored: 3 }));
    const owner = randomUUID();
    const [first, second, third] = [task(owner), task(owner), task(owner)];
    await store.create(first);
    await store.create(second);
    assert.equal(await store.create(task(owner)).catch(refusal), 'live', 'a third unfinished task');
    await store.succeed(first.id, owner, ['a']);
    await store.fail(second.id, owner, 'timeout');
    // Two finished and one unfinished: the owner holds three.
    await store.create(third);
    assert.equal(await store.create(task(owner)).catch(refusal), 'stored', 'a fourth task held');
  });

  it('when a task is gone before its job finishes, then the late finish does not count against its owner', async () => {
    const store = await connected(open({ ...LIMITS, maxLive: 5, maxStored: 3 }));
    const owner = randomUUID();
    const gone = task(owner);
    await store.create(gone);
    await store.remove(gone.id, owner);
    await store.succeed(gone.id, owner, ['late']);
    for (let n = 0; n < 3; n++) await store.create(task(owner));
    assert.equal(await store.create(task(owner)).catch(refusal), 'stored', 'a fourth task held');
  });
});

/**
 * The notice itself, apart from the waiter's periodic rereads: a watch must wake with 'notice', on
 * another connection to the same Redis too (the worker and the API are different processes).
 */
describe('result store: watching a task finish', function () {
  this.timeout(30_000);
  const redisUrl = profile.env.REDIS_URL;
  const logger = createLogger('silent');
  const stores: ResultStore<string>[] = [];
  // The worker's store and the API's share a key prefix (and so the channel of finished tasks).
  const keyPrefix = unique('watch');
  const open = () => {
    const store = createResultStore<string>(
      { redisUrl, ttlSeconds: 60, name: 'test results', keyPrefix, limits: LIMITS },
      logger,
    );
    stores.push(store);
    return store;
  };
  // With Redis, the worker's store is another connection (another process in production); in
  // memory there is one store per process.
  let reader: ResultStore<string>;
  let writer: ResultStore<string>;

  before(async () => {
    reader = open();
    writer = redisUrl ? open() : reader;
    for (const store of [reader, writer]) await connected(store);
  });

  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  const newTask = async () => {
    const task = { id: randomUUID(), ownerId: randomUUID(), status: 'WAITING' as const };
    await reader.create(task);
    return task;
  };

  it('when the worker finishes a task, then a watch on it wakes with a notice, success or failure', async () => {
    for (const finish of ['succeed', 'fail'] as const) {
      const task = await newTask();
      const watch = await reader.watch(task.id);
      try {
        const waking = watch.next(20_000);
        if (finish === 'succeed') await writer.succeed(task.id, task.ownerId, ['a', 'b']);
        else await writer.fail(task.id, task.ownerId, 'timeout');
        assert.equal(await waking, 'notice');
        assert.equal(
          (await reader.get(task.id, task.ownerId))?.status,
          finish === 'succeed' ? 'SUCCESS' : 'FAILED',
        );
      } finally {
        watch.close();
      }
    }
  });

  it('when a task finishes before the watcher waits, then the next wait returns the notice at once', async () => {
    const task = await newTask();
    const watch = await reader.watch(task.id);
    try {
      await writer.succeed(task.id, task.ownerId, []);
      // The notice may still be on its way over Redis: the wait is long, and ends with it.
      assert.equal(await watch.next(20_000), 'notice');
    } finally {
      watch.close();
    }
  });

  it('when another task finishes, or none, then the watch is not woken: it times out; an abort ends it', async () => {
    const [watched, other] = [await newTask(), await newTask()];
    const watch = await reader.watch(watched.id);
    try {
      await writer.succeed(other.id, other.ownerId, []);
      assert.equal(await watch.next(300), 'timeout');
      const stop = new AbortController();
      const waiting = watch.next(20_000, stop.signal);
      stop.abort();
      assert.equal(await waiting, 'aborted');
    } finally {
      watch.close();
    }
  });
});

/** Tasks that stay unfinished need a broker with no consumer yet: the services profile. */
(profile.services && profile.env.AMQP_URL ? describe : describe.skip)(
  'search status long poll across processes (services profile)',
  function () {
    this.timeout(60_000);
    const queue = freshQueueName();
    let first: TestApp | undefined;
    let second: TestApp | undefined;
    const apps = () => {
      if (!first || !second) throw new Error('the API instances did not start');
      return [first, second] as const;
    };

    before(async () => {
      // Two API instances on one queue, and no consumer until a test starts one.
      first = await startApp({ SEARCH_QUEUE: queue }, { consumer: false });
      second = await startApp({ SEARCH_QUEUE: queue }, { consumer: false });
    });

    after(async () => {
      await Promise.all([first?.close(), second?.close()]);
    });

    it('when no worker takes the task within wait, then the answer is its status then (WAITING)', async () => {
      const [first] = apps();
      const user = await registerAndLogin(first.api);
      const taskId = await createTask(first, user, { message: freshWord() });
      const res = await first.api.get(`/v1/chats/search/status/${taskId}?wait=1`).set(user.auth).expect(200);
      assert.deepEqual(res.body, { status: 'WAITING' });
    });

    it('when a consumer finishes a task created on one instance, then a long poll on the other gets SUCCESS', async () => {
      const [first, second] = apps();
      const { user, chatId, memberId } = await memberOfNewChat(first.api);
      const word = freshWord();
      await send(first.api, user, chatId, memberId, `found ${word}`);
      const taskId = await createTask(first, user, { message: word });
      const polling = second.api.get(`/v1/chats/search/status/${taskId}?wait=30`).set(user.auth);
      const answer = polling.then((res) => res);
      const consumer = await startConsumer(first.config, createLogger('silent'));
      try {
        const res = await answer;
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { status: 'SUCCESS', total: 1 });
      } finally {
        await consumer.stop();
      }
    });

    it('when the service shuts down, then a waiting long poll is answered at once with the status', async () => {
      const own = await startApp({ SEARCH_QUEUE: freshQueueName() }, { consumer: false });
      let closed = false;
      try {
        const user = await registerAndLogin(own.api);
        const taskId = await createTask(own, user, { message: freshWord() });
        const polling = own.api.get(`/v1/chats/search/status/${taskId}?wait=60`).set(user.auth);
        const answer = polling.then((res) => res);
        // The poll is waiting (counted in /metrics) when shutdown begins.
        await eventually(async () => {
          const metrics = await own.api.get('/metrics').expect(200);
          return /^messenger_search_status_waits 1$/m.test(metrics.text);
        }, 20_000);
        const closing = own.close();
        closed = true;
        const res = await answer;
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { status: 'WAITING' });
        await closing;
      } finally {
        if (!closed) await own.close();
      }
    });
  },
);
