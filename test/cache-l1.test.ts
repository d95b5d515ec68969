import assert from 'node:assert/strict';
import type { CacheModule } from '../src/modules/cache/index.js';
import { LocalCache } from '../src/modules/cache/local.js';
import { sharedApp, startApp, type Api, type TestApp } from './support/app.js';
import { memberOfNewChat, registerAndLogin, type User } from './support/fixtures.js';
import { describeSingleRedis, profile } from './support/profile.js';
import { eventually } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

interface Chat {
  user: User;
  chatId: string;
  memberId: string;
}

/** Waits (polling) until `condition` holds. */
const until = (condition: () => boolean, timeoutMs: number) =>
  eventually(() => Promise.resolve(condition()), timeoutMs);

function cacheOf(app: TestApp): CacheModule {
  const cache = app.service.modules.find((module) => module.name === 'cache');
  assert.ok(cache, 'the cache module is on');
  return cache as CacheModule;
}

/** The in-process layer of an app started with REDIS_URL. */
function localOf(app: TestApp) {
  const local = cacheOf(app).local;
  assert.ok(local, 'with REDIS_URL the cache keeps sessions and memberships in the process');
  return local;
}

const history = (api: Api, chat: Chat, user = chat.user) =>
  api.get(`/v1/chats/${chat.chatId}/messages?limit=10`).set(user.auth);

/** Reads until `app` answers the chat's history with the session and the membership from its memory. */
async function servedFromMemory(app: TestApp, chat: Chat): Promise<void> {
  const local = localOf(app);
  await eventually(async () => {
    const sessions = local.sessions.hits;
    const memberships = local.memberships.hits;
    await history(app.api, chat).expect(200);
    return local.sessions.hits > sessions && local.memberships.hits > memberships;
  }, 10_000);
}

describe('in-process cache of sessions and memberships (L1)', () => {
  describe('LocalCache', () => {
    const serving = () => ({ serving: true, epoch: 0 });

    it('keeps at most its capacity, the least recently used going first', () => {
      const cache = new LocalCache<number>(serving(), 3, 60_000);
      for (const key of ['a', 'b', 'c']) cache.set(key, 1, 0);
      assert.equal(cache.get('a'), 1); // a is now the most recently used
      cache.set('d', 1, 0);
      cache.set('e', 1, 0);
      assert.equal(cache.size, 3);
      assert.equal(cache.get('b'), undefined);
      assert.equal(cache.get('c'), undefined);
      assert.equal(cache.get('a'), 1);
      assert.equal(cache.get('e'), 1);
    });

    it('forgets an entry after its time, or the entry’s own shorter one', async () => {
      const cache = new LocalCache<number>(serving(), 10, 60);
      cache.set('short', 1, 0, 10);
      cache.set('long', 1, 0, 60_000);
      assert.equal(cache.get('long'), 1);
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(cache.get('short'), undefined);
      assert.equal(cache.get('long'), 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(cache.get('long'), undefined);
      assert.equal(cache.size, 0);
    });

    it('serves and keeps nothing while its guard does not serve, nor a value read before an invalidation', () => {
      const guard = { serving: false, epoch: 0 };
      const cache = new LocalCache<number>(guard, 10, 60_000);
      cache.set('k', 1, 0);
      assert.equal(cache.size, 0);
      guard.serving = true;
      cache.set('k', 1, 0);
      guard.serving = false;
      assert.equal(cache.get('k'), undefined, 'not served while invalidations may be missed');
      guard.serving = true;
      assert.equal(cache.get('k'), 1);
      // A read began at epoch 0, an invalidation came (epoch 1), then the read ended.
      guard.epoch = 1;
      cache.set('late', 1, 0);
      assert.equal(cache.get('late'), undefined);
      cache.set('late', 1, 1);
      assert.equal(cache.get('late'), 1);
    });
  });

  if (!profile.env.REDIS_URL) {
    it('without REDIS_URL there is no in-process layer (the cache is in memory already), and a logout holds at once', async () => {
      const app = await sharedApp();
      assert.equal(cacheOf(app).local, undefined);
      const { user, chatId, memberId } = await memberOfNewChat(app.api);
      const chat = { user, chatId, memberId };
      await history(app.api, chat).expect(200);
      await app.api.post('/v1/auth/logout').set(user.auth).expect(200);
      await history(app.api, chat).expect(401, { message: 'invalid-session-id' });
    });
    return;
  }

  const redisUrl = profile.env.REDIS_URL;

  describe('with two instances on the same Redis', function () {
    this.timeout(60_000);
    let a: TestApp;
    let b: TestApp;

    before(async () => {
      [a, b] = await Promise.all([startApp({}, { consumer: false }), startApp({}, { consumer: false })]);
      await until(() => localOf(a).serving && localOf(b).serving, 10_000);
    });
    after(async () => {
      await Promise.all([a.close(), b.close()]);
    });

    it('when a user logs out on A, then B (which served the session from memory just before) refuses it at once, and so does A', async () => {
      const chat = await memberOfNewChat(a.api);
      await servedFromMemory(b, chat);
      await servedFromMemory(a, chat);

      await a.api.post('/v1/auth/logout').set(chat.user.auth).expect(200);
      await history(b.api, chat).expect(401, { message: 'invalid-session-id' });
      await history(a.api, chat).expect(401, { message: 'invalid-session-id' });
    });

    it('when a member leaves on A, then B (which served the membership from memory just before) answers 404 for the chat at once', async () => {
      const chat = await memberOfNewChat(a.api);
      await servedFromMemory(b, chat);

      await a.api.delete(`/v1/chats/${chat.chatId}/users/${chat.memberId}`).set(chat.user.auth).expect(204);
      await history(b.api, chat).expect(404, { message: 'chat-not-found' });
      await b.api
        .get(`/v1/chats/${chat.chatId}/users?limit=10`)
        .set(chat.user.auth)
        .expect(404, { message: 'chat-not-found' });
      await b.api
        .post(`/v1/chats/${chat.chatId}/messages?user_id=${chat.memberId}`)
        .set(chat.user.auth)
        .send({ message: 'after leaving' })
        .expect(404);
      await history(a.api, chat).expect(404, { message: 'chat-not-found' });
      // The session is still good: only the membership went.
      await b.api.get('/v1/chats?limit=10').set(chat.user.auth).expect(200);
    });

    it('when a member joins again after leaving, then both instances let them read again', async () => {
      const chat = await memberOfNewChat(a.api);
      await servedFromMemory(b, chat);
      await a.api.delete(`/v1/chats/${chat.chatId}/users/${chat.memberId}`).set(chat.user.auth).expect(204);
      await history(b.api, chat).expect(404);
      await b.api
        .post(`/v1/chats/${chat.chatId}/users`)
        .set(chat.user.auth)
        .send({ user_name: chat.user.userName })
        .expect(201);
      await history(a.api, chat).expect(200);
      await history(b.api, chat).expect(200);
    });
  });

  describe('with CACHE_LOCAL_ENTRIES=2', function () {
    this.timeout(60_000);
    let app: TestApp;

    before(async () => {
      app = await startApp({ CACHE_LOCAL_ENTRIES: '2' }, { consumer: false });
      await until(() => localOf(app).serving, 10_000);
    });
    after(async () => {
      await app.close();
    });

    it('when more sessions and memberships are used, then at most that many of each are kept', async () => {
      const local = localOf(app);
      assert.equal(local.sessions.capacity, 2);
      for (let i = 0; i < 5; i++) {
        const chat = await memberOfNewChat(app.api);
        await history(app.api, chat).expect(200);
        await history(app.api, chat).expect(200);
        assert.ok(local.sessions.size <= 2, `${local.sessions.size} sessions kept`);
        assert.ok(local.memberships.size <= 2, `${local.memberships.size} memberships kept`);
      }
      assert.equal(local.sessions.size, 2);
      assert.equal(local.memberships.size, 2);
    });
  });

  describe('with CACHE_LOCAL_ENTRIES=0', function () {
    this.timeout(60_000);
    it('then nothing is kept in the process and sessions work as before', async () => {
      const app = await startApp({ CACHE_LOCAL_ENTRIES: '0' }, { consumer: false });
      try {
        assert.equal(cacheOf(app).local, undefined);
        const user = await registerAndLogin(app.api);
        await app.api.get('/v1/chats?limit=10').set(user.auth).expect(200);
        await app.api.post('/v1/auth/logout').set(user.auth).expect(200);
        await app.api.get('/v1/chats?limit=10').set(user.auth).expect(401);
      } finally {
        await app.close();
      }
    });
  });

  // One instance reaches Redis through a proxy the test cuts: its subscription ends with the rest.
  describeSingleRedis('with one of two instances cut off from Redis', function () {
    this.timeout(60_000);
    const proxy = TcpProxy.to(redisUrl);
    let cut: TestApp;
    let linked: TestApp;

    before(async () => {
      await proxy.start();
      [cut, linked] = await Promise.all([
        startApp({ REDIS_URL: proxy.proxiedUrl(redisUrl) }, { consumer: false }),
        startApp({}, { consumer: false }),
      ]);
      await until(() => localOf(cut).serving && localOf(linked).serving, 10_000);
    });
    afterEach(async () => {
      if (!proxy.listening) await proxy.restore();
    });
    after(async () => {
      await Promise.all([cut.close(), linked.close()]);
      await proxy.close();
    });

    it('while its subscription is down it serves nothing from memory: a logout and a leave elsewhere hold on it at once; back, it recovers by itself', async () => {
      const leaver = await memberOfNewChat(linked.api);
      const quitter = await memberOfNewChat(linked.api);
      await servedFromMemory(cut, leaver);
      await servedFromMemory(cut, quitter);
      const local = localOf(cut);
      assert.ok(local.sessions.size >= 2);

      await proxy.cut();
      await until(() => !local.serving, 5_000);
      assert.equal(local.sessions.size, 0, 'emptied when the subscription ended');
      assert.equal(local.memberships.size, 0);

      // Read during the outage (from the database): nothing is kept for later.
      await history(cut.api, leaver).expect(200);
      assert.equal(local.sessions.size, 0);

      // Invalidations published meanwhile never reach it.
      await linked.api.post('/v1/auth/logout').set(quitter.user.auth).expect(200);
      await linked.api
        .delete(`/v1/chats/${leaver.chatId}/users/${leaver.memberId}`)
        .set(leaver.user.auth)
        .expect(204);
      await history(cut.api, quitter).expect(401, { message: 'invalid-session-id' });
      await history(cut.api, leaver).expect(404, { message: 'chat-not-found' });

      await proxy.restore();
      await until(() => local.serving, 15_000);
      // It reads the current state again, and serves from memory again.
      await history(cut.api, quitter).expect(401, { message: 'invalid-session-id' });
      await history(cut.api, leaver).expect(404, { message: 'chat-not-found' });
      const fresh = await memberOfNewChat(linked.api);
      await servedFromMemory(cut, fresh);
    });

    it('when the subscription comes back, then what was kept before is not served (messages sent meanwhile were lost)', async () => {
      const chat = await memberOfNewChat(linked.api);
      await servedFromMemory(cut, chat);
      await proxy.cut();
      await until(() => !localOf(cut).serving, 5_000);
      await proxy.restore();
      await until(() => localOf(cut).serving, 15_000);
      const local = localOf(cut);
      const hits = local.sessions.hits;
      await history(cut.api, chat).expect(200);
      assert.equal(
        local.sessions.hits,
        hits,
        'the first read after the subscription came back is not from memory',
      );
      await servedFromMemory(cut, chat);
    });
  });
});
