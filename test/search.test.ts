import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sharedApp, startApp, type TestApp, seedSql } from './support/app.js';
import {
  badParameters,
  createChat,
  join,
  registerAndLogin,
  send,
  type User,
  unique,
  memberOfNewChat,
} from './support/fixtures.js';
import { finished } from './support/search-helpers.js';

/** Creates a task and waits until it has succeeded; returns its id. */
async function completedTask(app: TestApp, user: User, body: Record<string, unknown>): Promise<string> {
  const created = await app.api.post('/v1/chats/search').set(user.auth).send(body).expect(201);
  const taskId = created.body.task_id as string;
  const status = await finished(app, user, taskId);
  assert.equal(status.status, 'SUCCESS', JSON.stringify(status));
  return taskId;
}

async function search(
  app: TestApp,
  user: User,
  body: Record<string, unknown>,
): Promise<{ text: string; chat_id: string; message_id: string; user_id: string; highlights: string[] }[]> {
  const taskId = await completedTask(app, user, body);
  const status = await app.api.get(`/v1/chats/search/status/${taskId}`).set(user.auth).expect(200);
  const page = await app.api.get(`/v1/chats/search/${taskId}/messages?limit=1000`).set(user.auth).expect(200);
  assert.equal(page.body.messages.length, status.body.total);
  return page.body.messages;
}

describe('search', () => {
  let app: TestApp;
  let alice: User;
  let bob: User;
  let chat: string;
  let other: string;
  let aliceMember: string;
  let bobMember: string;
  // A word no other suite (or earlier run on the same database) uses, so counts are exact.
  const tag = unique('zq').replace('-', '');

  before(async () => {
    app = await sharedApp();
    alice = await registerAndLogin(app.api);
    bob = await registerAndLogin(app.api);
    chat = await createChat(app.api, alice);
    other = await createChat(app.api, bob);
    aliceMember = await join(app.api, alice, chat);
    bobMember = await join(app.api, bob, chat);
    const bobOther = await join(app.api, bob, other);
    await send(app.api, alice, chat, aliceMember, `${tag} The cats were running across the garden`);
    await send(app.api, bob, chat, bobMember, `${tag} A cat runs; dogs sleep`);
    await send(app.api, alice, chat, aliceMember, `${tag} Кошки быстро бегали по двору`);
    await send(app.api, bob, chat, bobMember, `${tag} Кошка спит на диване`);
    await send(app.api, alice, chat, aliceMember, `${tag} the quick brown fox jumps over the lazy dog`);
    await send(app.api, bob, other, bobOther, `${tag} cats in a chat alice is not in`);
  });

  it('when words are searched, then English forms match by their stem', async () => {
    const hits = await search(app, alice, { message: `${tag} cat` });
    assert.deepEqual(hits.map((h) => h.text).sort(), [
      `${tag} A cat runs; dogs sleep`,
      `${tag} The cats were running across the garden`,
    ]);
    assert.ok(hits.every((h) => h.highlights.some((fragment) => /<mark>cats?<\/mark>/i.test(fragment))));
  });

  it('when Russian words are searched, then their forms match by stem', async () => {
    const hits = await search(app, alice, { message: `${tag} кошка` });
    assert.equal(hits.length, 2);
    assert.ok(hits.some((h) => h.text.includes('Кошки быстро')));
  });

  it('when "or" joins words, then either matches, newest first', async () => {
    const hits = await search(app, alice, { message: `${tag} (fox or кошка)` });
    assert.equal(hits.length, 3);
    assert.ok(hits[0]!.text.includes('fox'), 'newest first');
  });

  it('when a phrase is quoted, then only that word order matches', async () => {
    const hits = await search(app, alice, { message: `${tag} "quick brown fox"` });
    assert.equal(hits.length, 1);
    assert.equal((await search(app, alice, { message: `${tag} "fox brown quick"` })).length, 0);
  });

  it('when a word is excluded with -, then messages with it are left out', async () => {
    const hits = await search(app, alice, { message: `${tag} cat -dogs` });
    assert.deepEqual(
      hits.map((h) => h.text),
      [`${tag} The cats were running across the garden`],
    );
  });

  it('when searching, then only chats the caller is a member of are searched', async () => {
    const aliceHits = await search(app, alice, { message: `${tag} cats` });
    assert.ok(aliceHits.every((h) => h.chat_id === chat));
    const bobHits = await search(app, bob, { message: `${tag} cats` });
    assert.ok(bobHits.some((h) => h.chat_id === other));
  });

  it('when filtered by chat, sender or time window, then only those messages match', async () => {
    const bySender = await search(app, alice, { message: `${tag} cat`, from_user_id: bobMember });
    assert.deepEqual(
      bySender.map((h) => h.user_id),
      [bobMember],
    );
    const byChat = await search(app, bob, { message: `${tag} cats`, chat_id: other });
    assert.ok(byChat.length === 1 && byChat[0]!.chat_id === other);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.equal((await search(app, alice, { message: `${tag} cat`, after: future })).length, 0);
    assert.equal((await search(app, alice, { message: `${tag} cat`, before: future })).length, 2);
  });

  it('when filtering by a chat the caller is not in, then it answers 404 chat-not-found', async () => {
    await app.api
      .post('/v1/chats/search')
      .set(alice.auth)
      .send({ message: 'cats', chat_id: other })
      .expect(404, {
        message: 'chat-not-found',
      });
  });

  it('when results are paged, then the cursor walks them newest first without repeats, and reading deletes nothing', async () => {
    const created = await app.api.post('/v1/chats/search').set(alice.auth).send({ message: tag }).expect(201);
    const taskId = created.body.task_id as string;
    assert.equal((await finished(app, alice, taskId)).total, 5);
    const seen: string[] = [];
    let from = '';
    for (;;) {
      const res = await app.api
        .get(`/v1/chats/search/${taskId}/messages?limit=2${from ? `&from=${from}` : ''}`)
        .set(alice.auth)
        .expect(200);
      seen.push(...res.body.messages.map((m: { message_id: string }) => m.message_id));
      if (!res.body.next) break;
      from = res.body.next.iterator;
    }
    assert.equal(seen.length, 5);
    assert.equal(new Set(seen).size, 5);
    const again = await app.api
      .get(`/v1/chats/search/${taskId}/messages?limit=1000`)
      .set(alice.auth)
      .expect(200);
    assert.deepEqual(
      again.body.messages.map((m: { message_id: string }) => m.message_id),
      seen,
    );
  });

  it('when the query is 3 characters or fewer, or the body is bad, then it answers 400', async () => {
    for (const body of [
      { message: 'cat' },
      { message: 'кот' },
      {},
      { message: 42 },
      { message: 'x'.repeat(1001) },
    ]) {
      await app.api.post('/v1/chats/search').set(alice.auth).send(body).expect(400).expect(badParameters());
    }
    await app.api
      .post('/v1/chats/search')
      .set(alice.auth)
      .send({ message: 'cats', after: 'yesterday' })
      .expect(400)
      .expect(badParameters());
  });

  it('when the query is full of tsquery metacharacters, then it never fails', async () => {
    for (const message of [
      "a & | ! :* ( ) <-> \\ '",
      '"""" ---- or or',
      "'); DROP TABLE messages; --",
      '!!!!:*:*',
    ]) {
      const created = await app.api.post('/v1/chats/search').set(alice.auth).send({ message }).expect(201);
      const status = await finished(app, alice, created.body.task_id);
      assert.equal(status.status, 'SUCCESS', `${message}: ${JSON.stringify(status)}`);
    }
  });

  it('when another user asks for a task, then it answers 404 task-not-found', async () => {
    const taskId = await completedTask(app, alice, { message: `${tag} cat` });
    for (const path of [`/v1/chats/search/status/${taskId}`, `/v1/chats/search/${taskId}/messages?limit=5`]) {
      await app.api.get(path).set(bob.auth).expect(404, { message: 'task-not-found' });
    }
    await app.api
      .get('/v1/chats/search/status/random_task')
      .set(alice.auth)
      .expect(404, { message: 'task-not-found' });
  });

  it('when a cursor is unusable or limit is out of range, then it answers 400', async () => {
    const taskId = await completedTask(app, alice, { message: `${tag} cat` });
    const base = `/v1/chats/search/${taskId}/messages`;
    await app.api.get(`${base}?limit=5&from=garbage!`).set(alice.auth).expect(400, { message: 'bad-cursor' });
    await app.api.get(`${base}?limit=0`).set(alice.auth).expect(400).expect(badParameters());
    await app.api.get(`${base}?limit=1001`).set(alice.auth).expect(400).expect(badParameters());
  });

  it('when unauthenticated, then search answers 401', async () => {
    await app.api.post('/v1/chats/search').send({ message: 'cats' }).expect(401, { message: 'auth-failed' });
  });
});

describe('search limits and lifecycle', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('when more messages match than SEARCH_MAX_RESULTS, then the task keeps the newest ones', async () => {
    app = await startApp({ SEARCH_MAX_RESULTS: '3' });
    const { user, chatId: chat, memberId: member } = await memberOfNewChat(app.api);
    const tag = unique('cap').replace('-', '');
    for (let i = 1; i <= 5; i++) await send(app.api, user, chat, member, `${tag} number ${i}`);
    const created = await app.api.post('/v1/chats/search').set(user.auth).send({ message: tag }).expect(201);
    assert.equal((await finished(app, user, created.body.task_id)).total, 3);
    const page = await app.api
      .get(`/v1/chats/search/${created.body.task_id}/messages?limit=10`)
      .set(user.auth);
    assert.deepEqual(
      page.body.messages.map((m: { text: string }) => m.text),
      [`${tag} number 5`, `${tag} number 4`, `${tag} number 3`],
    );
  });

  it('when a task is not finished yet, then its results answer 409 task-not-complete', async () => {
    // Without a consumer the task stays WAITING (embedded: the worker is stopped first).
    app = await startApp({}, { consumer: false });
    const user = await registerAndLogin(app.api);
    if (!app.config.amqpUrl) {
      const search = app.service.modules.find((m) => m.name === 'search');
      await search?.close?.();
    }
    const created = await app.api
      .post('/v1/chats/search')
      .set(user.auth)
      .send({ message: 'anything' })
      .expect(201);
    await app.api
      .get(`/v1/chats/search/status/${created.body.task_id}`)
      .set(user.auth)
      .expect(200, { status: 'WAITING' });
    await app.api
      .get(`/v1/chats/search/${created.body.task_id}/messages?limit=5`)
      .set(user.auth)
      .expect(409, { message: 'task-not-complete' });
  });

  it('when the query runs longer than SEARCH_TIMEOUT_MS, then the task ends FAILED with error timeout', async function () {
    // Seeding 30,000 rows and highlighting them takes a while on a busy machine (PGlite: one thread).
    this.timeout(90_000);
    // The seeding bulk insert goes through the app's pool: not bound like an API query.
    app = await startApp({
      SEARCH_TIMEOUT_MS: '10',
      SEARCH_MAX_RESULTS: '100000',
      DB_QUERY_TIMEOUT_MS: '60000',
    });
    const { user, chatId: chat, memberId: member } = await memberOfNewChat(app.api);
    // Fetching 30,000 matches takes far longer than 10 ms (measured: 60..270 ms in PGlite).
    await seedSql(
      app,
      `INSERT INTO messages (chat_id, member_id, text)
       SELECT ?, ?, 'slow searching needs many matching words, number ' || g FROM generate_series(1, 30000) g`,
      [chat, member],
    );
    const created = await app.api
      .post('/v1/chats/search')
      .set(user.auth)
      .send({ message: 'matching' })
      .expect(201);
    assert.deepEqual(await finished(app, user, created.body.task_id), { status: 'FAILED', error: 'timeout' });
    await app.api
      .get(`/v1/chats/search/${created.body.task_id}/messages?limit=5`)
      .set(user.auth)
      .expect(409, { message: 'task-failed' });
  });

  it('when the results expire, then the task answers 404', async () => {
    app = await startApp({ SEARCH_RESULT_TTL: '1' });
    const user = await registerAndLogin(app.api);
    const created = await app.api
      .post('/v1/chats/search')
      .set(user.auth)
      .send({ message: 'anything' })
      .expect(201);
    await finished(app, user, created.body.task_id);
    await sleep(1300);
    await app.api.get(`/v1/chats/search/status/${created.body.task_id}`).set(user.auth).expect(404, {
      message: 'task-not-found',
    });
  });
});
