import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { sharedApp, startApp, type Api, type TestApp, twoApps } from './support/app.js';
import { join, registerAndLogin, send, unique, type User, memberOfNewChat } from './support/fixtures.js';
import { describeSingleRedis, profile } from './support/profile.js';
import { eventually, killLeftovers, spawnApi, type LogLine, type SpawnedApi } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

interface Chat {
  user: User;
  chatId: string;
  memberId: string;
}

async function chatWith(api: Api, ...messages: string[]): Promise<Chat> {
  const { user, chatId, memberId } = await memberOfNewChat(api);
  for (const message of messages) await send(api, user, chatId, memberId, message);
  return { user, chatId, memberId };
}

const history = (api: Api, chat: Chat, query = 'limit=10', user = chat.user) =>
  api.get(`/v1/chats/${chat.chatId}/messages?${query}`).set(user.auth);

const texts = (res: Response) => (res.body.messages as { text: string }[]).map((m) => m.text);

function expectCache(res: Response, status: 'HIT' | 'MISS' | 'STALE'): Response {
  assert.equal(res.headers['x-cache'], status);
  return res;
}

describe('cache', () => {
  let app: TestApp;
  before(async () => {
    app = await sharedApp();
  });

  it('when a page is read twice, then the second answer is the same page from the cache', async () => {
    const chat = await chatWith(app.api, 'one', 'two');
    const miss = expectCache(await history(app.api, chat).expect(200), 'MISS');
    const hit = expectCache(await history(app.api, chat).expect(200), 'HIT');
    assert.deepEqual(hit.body, miss.body);
    assert.deepEqual(texts(hit), ['one', 'two']);
  });

  it('when a message is sent, then the next read misses the cache and holds it', async () => {
    const chat = await chatWith(app.api, 'first');
    expectCache(await history(app.api, chat).expect(200), 'MISS');
    for (let i = 0; i < 5; i++) {
      expectCache(await history(app.api, chat).expect(200), 'HIT');
      await send(app.api, chat.user, chat.chatId, chat.memberId, `after ${i}`);
      const res = expectCache(await history(app.api, chat).expect(200), 'MISS');
      assert.equal(texts(res).at(-1), `after ${i}`);
    }
  });

  it('when pages are read with a cursor, then each is cached on its own and a new message reaches the last one', async () => {
    const chat = await chatWith(app.api, 'a', 'b', 'c');
    const first = expectCache(await history(app.api, chat, 'limit=2').expect(200), 'MISS');
    const cursor = encodeURIComponent(first.body.next.iterator as string);
    expectCache(await history(app.api, chat, `limit=2&from=${cursor}`).expect(200), 'MISS');
    expectCache(await history(app.api, chat, 'limit=2').expect(200), 'HIT');
    const last = expectCache(await history(app.api, chat, `limit=2&from=${cursor}`).expect(200), 'HIT');
    assert.deepEqual(texts(last), ['c']);

    await send(app.api, chat.user, chat.chatId, chat.memberId, 'd');
    const grown = expectCache(await history(app.api, chat, `limit=2&from=${cursor}`).expect(200), 'MISS');
    assert.deepEqual(texts(grown), ['c', 'd']);
    expectCache(await history(app.api, chat, 'limit=2').expect(200), 'MISS');
  });

  it('when a member joins again under another name, then cached pages show the new name', async () => {
    const chat = await chatWith(app.api, 'hello');
    expectCache(await history(app.api, chat).expect(200), 'MISS');
    expectCache(await history(app.api, chat).expect(200), 'HIT');
    await join(app.api, chat.user, chat.chatId, 'New Name');
    const res = expectCache(await history(app.api, chat).expect(200), 'MISS');
    assert.equal(res.body.messages[0].user_name, 'New Name');
  });

  it('when someone who is not a member asks for a cached page, then it is 404 chat-not-found', async () => {
    const chat = await chatWith(app.api, 'secret');
    expectCache(await history(app.api, chat).expect(200), 'MISS');
    expectCache(await history(app.api, chat).expect(200), 'HIT');
    const stranger = await registerAndLogin(app.api);
    const res = await history(app.api, chat, 'limit=10', stranger).expect(404, { message: 'chat-not-found' });
    assert.equal(res.headers['x-cache'], undefined);
    await app.api.get(`/v1/chats/${chat.chatId}/messages?limit=10`).expect(401);
    // Once they join, the same cached page is theirs to read.
    await join(app.api, stranger, chat.chatId);
    assert.deepEqual(texts(await history(app.api, chat, 'limit=10', stranger).expect(200)), ['secret']);
  });

  it('when a user logs out, then the cached session stops working at once', async () => {
    const chat = await chatWith(app.api, 'bye');
    expectCache(await history(app.api, chat).expect(200), 'MISS');
    expectCache(await history(app.api, chat).expect(200), 'HIT');
    await app.api.post('/v1/auth/logout').set(chat.user.auth).expect(200);
    await history(app.api, chat).expect(401, { message: 'invalid-session-id' });
  });

  it('when a session expires, then the cache does not keep it alive', async () => {
    const short = await startApp({ SESSION_TTL: '1' });
    try {
      const chat = await chatWith(short.api, 'soon gone');
      expectCache(await history(short.api, chat).expect(200), 'MISS');
      expectCache(await history(short.api, chat).expect(200), 'HIT');
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await history(short.api, chat).expect(401, { message: 'session-id-expired' });
    } finally {
      await short.close();
    }
  });

  it('when the cache is not in APPS, then there is no X-Cache header and everything works', async () => {
    const bare = await startApp({ APPS: 'health,throttling,auth,chats,messages,docs' });
    try {
      const chat = await chatWith(bare.api, 'plain');
      for (let i = 0; i < 2; i++) {
        assert.equal((await history(bare.api, chat).expect(200)).headers['x-cache'], undefined);
      }
      await send(bare.api, chat.user, chat.chatId, chat.memberId, 'more');
      assert.deepEqual(texts(await history(bare.api, chat).expect(200)), ['plain', 'more']);
      await bare.api.post('/v1/auth/logout').set(chat.user.auth).expect(200);
      await history(bare.api, chat).expect(401);
    } finally {
      await bare.close();
    }
  });

  it('when a cursor is garbage, then it answers 400 bad-cursor however long it is', async () => {
    const chat = await chatWith(app.api, 'x');
    for (const from of ['A'.repeat(2000), 'A'.repeat(2000), randomUUID()]) {
      await history(app.api, chat, `limit=10&from=${from}`).expect(400, { message: 'bad-cursor' });
    }
  });

  // Services profile: instances share the cache through Redis; outages are staged with TCP proxies.
  if (profile.services && profile.env.REDIS_URL) {
    const redisUrl = profile.env.REDIS_URL;
    const databaseUrl = profile.env.DATABASE_URL!;

    describe('with two instances on the same Postgres and Redis', () => {
      const { a, b } = twoApps();

      it('when a message is sent through A, then the page B had cached is stale on B at once', async () => {
        const chat = await chatWith(a().api, 'from A');
        expectCache(await history(b().api, chat).expect(200), 'MISS');
        expectCache(await history(a().api, chat).expect(200), 'HIT');
        expectCache(await history(b().api, chat).expect(200), 'HIT');
        await send(a().api, chat.user, chat.chatId, chat.memberId, 'again from A');
        const res = expectCache(await history(b().api, chat).expect(200), 'MISS');
        assert.deepEqual(texts(res), ['from A', 'again from A']);
      });

      it('when a user logs out on A, then the session B had cached stops working on B at once', async () => {
        const chat = await chatWith(a().api, 'hi');
        await history(b().api, chat).expect(200);
        await history(b().api, chat).expect(200);
        await a().api.post('/v1/auth/logout').set(chat.user.auth).expect(200);
        await history(b().api, chat).expect(401, { message: 'invalid-session-id' });
      });
    });

    describe('when the database goes away', function () {
      this.timeout(60_000);
      const target = new URL(databaseUrl);
      const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
      let stale: TestApp;

      before(async () => {
        await proxy.start();
        stale = await startApp({ DATABASE_URL: proxy.proxiedUrl(databaseUrl), CACHE_TTL: '1' });
      });
      after(async () => {
        await stale.close();
        await proxy.close();
      });

      it('then a cached page is served with X-Cache: STALE, and what cannot be authorized is 503', async () => {
        const chat = await chatWith(stale.api, 'kept');
        const stranger = await registerAndLogin(stale.api);
        const miss = expectCache(await history(stale.api, chat).expect(200), 'MISS');
        expectCache(await history(stale.api, chat).expect(200), 'HIT');
        await new Promise((resolve) => setTimeout(resolve, 1100));

        await proxy.cut();
        const res = expectCache(await history(stale.api, chat).expect(200), 'STALE');
        assert.deepEqual(res.body, miss.body);
        // Not cached: no page to serve, or no membership to check it against.
        await history(stale.api, chat, 'limit=5').expect(503, { message: 'service-unavailable' });
        await history(stale.api, chat, 'limit=10', stranger).expect(503, { message: 'service-unavailable' });

        await proxy.restore();
        await eventually(async () => (await history(stale.api, chat)).headers['x-cache'] === 'MISS', 10_000);
      });
    });

    describeSingleRedis('when Redis goes away', function () {
      this.timeout(60_000);
      const target = new URL(redisUrl);
      const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      let spawned: SpawnedApi;

      before(async () => {
        await proxy.start();
        spawned = await spawnApi({ REDIS_URL: proxy.proxiedUrl(redisUrl) });
        // Until the schema is in place /v1 answers 503 by design.
        await eventually(
          async () => (await spawned.api.get('/v1/chats/x/messages?limit=1')).status === 401,
          15_000,
        );
      });
      after(async () => {
        await spawned.stop();
        await proxy.close();
        await killLeftovers();
      });

      const started = (line: LogLine) => line.msg === 'cache unreachable: outage started';
      const ended = (line: LogLine) => line.msg === 'cache reachable again: outage ended';

      async function timed(request: () => PromiseLike<Response>): Promise<Response> {
        const begun = performance.now();
        const res = await request();
        assert.ok(performance.now() - begun < 1000, `took ${(performance.now() - begun).toFixed(0)} ms`);
        return res;
      }

      it('then requests go on without the cache, invalidations made meanwhile hold afterwards, a logout waits for it, one log line each way', async () => {
        const { api } = spawned;
        const chat = await chatWith(api, 'before');
        const login = await api
          .post('/v1/auth/login')
          .send({ user_name: chat.user.userName, password: chat.user.password })
          .expect(200);
        const other = { ...chat.user, auth: { Authorization: `session_id ${login.body.session_id}` } };
        await eventually(async () => (await history(api, chat)).headers['x-cache'] === 'HIT');
        await history(api, chat, 'limit=10', other).expect(200);

        await proxy.cut();
        expectCache(await timed(() => history(api, chat).expect(200)), 'MISS');
        await timed(() =>
          api
            .post(`/v1/chats/${chat.chatId}/messages?user_id=${chat.memberId}`)
            .set(chat.user.auth)
            .send({ message: 'during' })
            .expect(201),
        );
        // A logout cannot be made to hold on every instance now: refused, the session untouched.
        await timed(() => api.post('/v1/auth/logout').set(other.auth).expect(503));
        await timed(() => history(api, chat, 'limit=10', other).expect(200));
        await spawned.waitForLog(started);

        await proxy.restore();
        await eventually(
          async () => (await api.post('/v1/auth/logout').set(other.auth)).status !== 503,
          10_000,
        );
        await eventually(async () => {
          // Never the page cached before the outage, never the session logged out.
          await history(api, chat, 'limit=10', other).expect(401);
          const res = await history(api, chat).expect(200);
          assert.deepEqual(texts(res), ['before', 'during']);
          return res.headers['x-cache'] === 'HIT';
        }, 10_000);
        await spawned.waitForLog(ended);
        assert.equal(spawned.logs().filter(started).length, 1);
        assert.equal(spawned.logs().filter(ended).length, 1);
      });

      it('then a Redis that stops answering (no reset, no refusal) costs each request well under a second', async () => {
        const { api } = spawned;
        const chat = await chatWith(api, unique('frozen'));
        await eventually(async () => (await history(api, chat)).headers['x-cache'] === 'HIT');
        proxy.freeze();
        for (let i = 0; i < 3; i++) await timed(() => history(api, chat).expect(200));
        await timed(() =>
          send(api, chat.user, chat.chatId, chat.memberId, 'while frozen').then(() => history(api, chat)),
        );
        await proxy.cut();
        await proxy.restore();
        await eventually(async () => {
          const res = await history(api, chat).expect(200);
          assert.equal(texts(res).at(-1), 'while frozen');
          return res.headers['x-cache'] === 'HIT';
        }, 10_000);
      });
    });
  }
});
