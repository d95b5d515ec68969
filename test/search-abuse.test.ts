import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { createLogger } from '../src/infra/logger.js';

import { createJobQueue } from '../src/infra/queue.js';

import { seedSql, startApp, type TestApp } from './support/app.js';

import { badParameters, registerAndLogin, unique, type User, memberOfNewChat } from './support/fixtures.js';
import { profile } from './support/profile.js';

import {
  createTask,
  finished,
  hitsKey,
  redisInspector,
  taskKey,
  userIdOf,
} from './support/search-helpers.js';

/** An app whose search jobs are never run: its tasks stay WAITING (unfinished). */
async function appWithoutWorker(env: Record<string, string> = {}): Promise<TestApp> {
  const app = await startApp(env, { consumer: false });
  if (!app.config.amqpUrl) {
    const search = app.service.modules.find((m) => m.name === 'search');
    await search?.close?.();
  }
  return app;
}

function expectLimited(res: { status: number; body: { message?: string }; headers: Record<string, string> }) {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.equal(res.body.message, 'request-limit-exceeded');
  assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
}

describe('search abuse limits', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('when a search finds 1000 long messages, then pages answer their texts and highlights newest first while the task stores only ids', async () => {
    app = await startApp({ SEARCH_RESULT_TTL: '60' });
    const { user, chatId: chat, memberId: member } = await memberOfNewChat(app.api);
    const tag = unique('big').replace('-', '');
    const filler = 'lorem ipsum dolor sit amet '.repeat(150).slice(0, 3980);
    await seedSql(
      app,
      `INSERT INTO messages (chat_id, member_id, text)
       SELECT ?, ?, 'number ' || g || ' ' || ? || ' ' || ? FROM generate_series(1, 1000) g`,
      [chat, member, tag, filler],
    );
    const taskId = await createTask(app, user, { message: tag });
    assert.deepEqual(await finished(app, user, taskId, 60_000), { status: 'SUCCESS', total: 1000 });

    const first = await app.api.get(`/v1/chats/search/${taskId}/messages?limit=3`).set(user.auth).expect(200);
    const messages = first.body.messages as {
      text: string;
      chat_id: string;
      user_id: string;
      highlights: string[];
    }[];
    assert.deepEqual(
      messages.map((message) => message.text.split(' ').slice(0, 2).join(' ')),
      ['number 1000', 'number 999', 'number 998'],
    );
    for (const message of messages) {
      assert.equal(message.chat_id, chat);
      assert.equal(message.user_id, member);
      assert.equal(message.text.length, message.text.indexOf(tag) + tag.length + 1 + filler.length);
      assert.ok(message.highlights.some((fragment) => fragment.includes(`<mark>${tag}</mark>`)));
    }
    const last = await app.api
      .get(
        `/v1/chats/search/${taskId}/messages?limit=1000&from=${encodeURIComponent(first.body.next.iterator)}`,
      )
      .set(user.auth)
      .expect(200);
    assert.equal(last.body.messages.length, 997);
    assert.match(last.body.messages.at(-1).text, /^number 1 /);

    if (app.config.redisUrl) {
      // ~4 MB of text found; the task keeps 1000 ids: 5.2 MB held before ids-only storage.
      const redis = redisInspector(app.config.redisUrl);
      const owner = await userIdOf(app, user);
      try {
        const bytes =
          ((await redis.memory('USAGE', taskKey(owner, taskId))) ?? 0) +
          ((await redis.memory('USAGE', hitsKey(owner, taskId))) ?? 0);
        assert.ok(bytes < 64 * 1024, `the task holds ${bytes} bytes in Redis`);
      } finally {
        redis.disconnect();
      }
    }
  });

  it('when a user has SEARCH_MAX_LIVE_TASKS unfinished tasks, then one more answers 429 with Retry-After and other users are not affected', async () => {
    app = await appWithoutWorker({ SEARCH_MAX_LIVE_TASKS: '2' });
    const [hog, other] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
    await createTask(app, hog, { message: 'first query' });
    await createTask(app, hog, { message: 'second query' });
    expectLimited(await app.api.post('/v1/chats/search').set(hog.auth).send({ message: 'third query' }));
    await createTask(app, other, { message: 'other query' });
  });

  (profile.services ? it : it.skip)(
    'when an unfinished task is gone from Redis (or finished by an older version), then it no longer counts as live',
    async () => {
      app = await appWithoutWorker({ SEARCH_MAX_LIVE_TASKS: '1' });
      const user = await registerAndLogin(app.api);
      const gone = await createTask(app, user, { message: 'first query' });
      expectLimited(await app.api.post('/v1/chats/search').set(user.auth).send({ message: 'second query' }));
      const redis = redisInspector(app.config.redisUrl!);
      const owner = await userIdOf(app, user);
      try {
        await redis.hset(taskKey(owner, gone), 'status', 'SUCCESS', 'total', 0);
        const finishedElsewhere = await createTask(app, user, { message: 'second query' });
        await redis.del(taskKey(owner, finishedElsewhere));
      } finally {
        redis.disconnect();
      }
      await createTask(app, user, { message: 'third query' });
    },
  );

  it('when concurrent creates race for the last live slot, then exactly the cap is accepted', async () => {
    app = await appWithoutWorker({ SEARCH_MAX_LIVE_TASKS: '3' });
    const hog = await registerAndLogin(app.api);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        app!.api
          .post('/v1/chats/search')
          .set(hog.auth)
          .send({ message: `query ${i}` }),
      ),
    );
    assert.equal(answers.filter((res) => res.status === 201).length, 3);
    for (const res of answers.filter((r) => r.status !== 201)) expectLimited(res);
  });

  it('when a user holds SEARCH_MAX_STORED_TASKS tasks, then one more answers 429 until the oldest results expire', async () => {
    app = await startApp({ SEARCH_MAX_STORED_TASKS: '2', SEARCH_RESULT_TTL: '2' });
    const user = await registerAndLogin(app.api);
    for (const query of ['first query', 'second query']) {
      assert.equal(
        (await finished(app, user, await createTask(app, user, { message: query }))).status,
        'SUCCESS',
      );
    }
    const refused = await app.api.post('/v1/chats/search').set(user.auth).send({ message: 'third query' });
    expectLimited(refused);
    assert.ok(Number(refused.headers['retry-after']) <= 2);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await app.api.post('/v1/chats/search').set(user.auth).send({ message: 'third query' });
      if (res.status === 201) break;
      expectLimited(res);
      assert.ok(Date.now() < deadline, 'still refused long after the results expired');
      await sleep(200);
    }
  });

  it('when a query has more words than SEARCH_MAX_TERMS, then it answers 400 with a detail', async () => {
    app = await startApp({ SEARCH_MAX_TERMS: '5' });
    const user = await registerAndLogin(app.api);
    await createTask(app, user, { message: 'one two three four five' });
    await app.api
      .post('/v1/chats/search')
      .set(user.auth)
      .send({ message: 'one two-three "four five" -six' })
      .expect(400)
      .expect(badParameters(/^message must have at most 5 words, got 6$/));
  });

  it('when the default word cap meets a 1000-character AND of words, then it answers 400', async () => {
    app = await startApp();
    const user = await registerAndLogin(app.api);
    const query = 'common words '.repeat(80).slice(0, 1000);
    await app.api
      .post('/v1/chats/search')
      .set(user.auth)
      .send({ message: query })
      .expect(400)
      .expect(badParameters(/^message must have at most 16 words/));
  });

  (profile.services ? it.skip : it)(
    'when the in-process result store is at SEARCH_STORE_MAX_BYTES, then a new task answers 429',
    async () => {
      // 1000 results reserve 39,000 bytes: one unfinished task fits in 65,536, a second does not.
      app = await appWithoutWorker({ SEARCH_STORE_MAX_BYTES: '65536', SEARCH_MAX_RESULTS: '1000' });
      const [first, second] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      await createTask(app, first, { message: 'first query' });
      expectLimited(
        await app.api.post('/v1/chats/search').set(second.auth).send({ message: 'second query' }),
      );
    },
  );

  it('when a search date is a day the calendar lacks or a zone moves it out of years 0001..9999, then it answers 400', async () => {
    app = await startApp();
    const user: User = await registerAndLogin(app.api);
    for (const [field, value] of [
      ['after', '0001-01-01T00:00:00+14:00'],
      ['before', '9999-12-31T23:59:59-14:00'],
      ['after', '2023-02-30'],
      ['before', '2023-04-31T10:00:00Z'],
      ['after', '2023-02-29'],
    ] as const) {
      await app.api
        .post('/v1/chats/search')
        .set(user.auth)
        .send({ message: 'hello world', [field]: value })
        .expect(400)
        .expect(badParameters(new RegExp(`^${field} must be an ISO 8601 date`)));
    }
    const leapDay = await createTask(app, user, {
      message: 'hello world',
      after: '2024-02-29',
      before: '9999-12-31',
    });
    assert.equal((await finished(app, user, leapDay)).status, 'SUCCESS');
  });
});

describe('in-process job queue fairness', () => {
  it("when one user's backlog is waiting, then another user's job runs next, not after the backlog", async () => {
    const queue = createJobQueue<{ user: string; n: number }>(
      {
        queue: 'fairness',
        isJob: (value): value is { user: string; n: number } => typeof value === 'object',
        fairnessKey: (job) => job.user,
      },
      createLogger('silent'),
    );
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await queue.consume(async (job) => {
      order.push(`${job.user}${job.n}`);
      if (job.user === 'hog' && job.n === 1) await gate;
    }, 1);
    for (let n = 1; n <= 5; n++) await queue.publish({ user: 'hog', n });
    await queue.publish({ user: 'other', n: 1 });
    release();
    const deadline = Date.now() + 10_000;
    while (order.length < 6 && Date.now() < deadline) await sleep(5);
    await queue.close();
    assert.deepEqual(order.slice(0, 2), ['hog1', 'other1']);
  });
});
