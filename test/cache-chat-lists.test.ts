import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { createCacheStore, type CacheStore } from '../src/infra/cache.js';
import { hashTag } from '../src/infra/redis.js';
import { createLogger } from '../src/infra/logger.js';
import { sharedApp, startApp, twoApps, type Api, type TestApp } from './support/app.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';
import { describeSingleRedis, profile } from './support/profile.js';
import { eventually } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

interface ListedChat {
  chat_id: string;
  unread: number;
  last_message: { text: string; user_name: string } | null;
}

const list = (api: Api, user: User, query = 'limit=20') => api.get(`/v1/chats?${query}`).set(user.auth);
const chatsOf = (res: Response) => res.body.chats as ListedChat[];

/** The list's answer and where it came from, checked against what is expected. */
async function expectList(
  api: Api,
  user: User,
  cache: 'HIT' | 'MISS',
  query?: string,
): Promise<ListedChat[]> {
  const res = await list(api, user, query).expect(200);
  assert.equal(res.headers['x-cache'], cache);
  return chatsOf(res);
}

/** Alice and Bob in two chats (`first` more recently active), Alice's list read twice (cached). */
async function twoChats(api: Api) {
  const [alice, bob] = [await registerAndLogin(api), await registerAndLogin(api)];
  const chats: { chatId: string; alice: string; bob: string }[] = [];
  for (const name of ['second', 'first']) {
    const chatId = await createChat(api, alice, name);
    const members = { alice: await join(api, alice, chatId), bob: await join(api, bob, chatId) };
    await send(api, alice, chatId, members.alice, `hello ${name}`);
    chats.push({ chatId, ...members });
  }
  const [second, first] = chats as [(typeof chats)[0], (typeof chats)[0]];
  await list(api, alice).expect(200);
  return { alice, bob, first, second };
}

describe('cache: chat lists', () => {
  let app: TestApp;
  before(async () => {
    app = await sharedApp();
  });

  it('when a chat list is read twice, then the second answer is the same list from the cache', async () => {
    const alice = await registerAndLogin(app.api);
    await join(app.api, alice, await createChat(app.api, alice));
    const miss = await list(app.api, alice).expect(200);
    assert.equal(miss.headers['x-cache'], 'MISS');
    const hit = await list(app.api, alice).expect(200);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.deepEqual(hit.body, miss.body);
  });

  it('when another member posts in one of my chats, then my list misses and shows it on top with its unread count', async () => {
    const { alice, bob, first, second } = await twoChats(app.api);
    assert.deepEqual(
      (await expectList(app.api, alice, 'HIT')).map((chat) => chat.chat_id),
      [first.chatId, second.chatId],
    );
    await send(app.api, bob, second.chatId, second.bob, 'news');
    const chats = await expectList(app.api, alice, 'MISS');
    assert.deepEqual(
      chats.map((chat) => [chat.chat_id, chat.unread, chat.last_message?.text]),
      [
        [second.chatId, 1, 'news'],
        [first.chatId, 0, 'hello first'],
      ],
    );
    await expectList(app.api, alice, 'HIT');
  });

  it('when a message is posted in a chat I am not in, then my cached list still holds', async () => {
    const { alice, bob } = await twoChats(app.api);
    const elsewhere = await createChat(app.api, bob);
    await send(app.api, bob, elsewhere, await join(app.api, bob, elsewhere), 'not for alice');
    await expectList(app.api, alice, 'HIT');
  });

  it('when I move a read mark, join, or leave, then my list misses and shows it', async () => {
    const { alice, bob, first, second } = await twoChats(app.api);
    const messageId = await send(app.api, bob, first.chatId, first.bob, 'unread');
    assert.equal((await expectList(app.api, alice, 'MISS'))[0]?.unread, 1);
    await app.api
      .post(`/v1/chats/${first.chatId}/read`)
      .set(alice.auth)
      .send({ message_id: messageId })
      .expect(200);
    assert.equal((await expectList(app.api, alice, 'MISS'))[0]?.unread, 0);

    await app.api.delete(`/v1/chats/${second.chatId}/users/${second.alice}`).set(alice.auth).expect(204);
    assert.deepEqual(
      (await expectList(app.api, alice, 'MISS')).map((chat) => chat.chat_id),
      [first.chatId],
    );
    await join(app.api, alice, second.chatId);
    assert.equal((await expectList(app.api, alice, 'MISS')).length, 2);
  });

  it('when the sender of a last message joins again under another name, then lists show the new name', async () => {
    const { alice, bob, first } = await twoChats(app.api);
    await send(app.api, bob, first.chatId, first.bob, 'from bob');
    assert.equal((await expectList(app.api, alice, 'MISS'))[0]?.last_message?.user_name, bob.userName);
    await expectList(app.api, alice, 'HIT');
    await join(app.api, bob, first.chatId, 'Robert');
    assert.equal((await expectList(app.api, alice, 'MISS'))[0]?.last_message?.user_name, 'Robert');
  });

  it('when a list is read with another limit or a cursor, then only the first pages of the cached limits are kept', async () => {
    const { alice } = await twoChats(app.api);
    await expectList(app.api, alice, 'MISS', 'limit=3');
    await expectList(app.api, alice, 'MISS', 'limit=3');
    await expectList(app.api, alice, 'MISS', 'limit=1');
    const page = await expectList(app.api, alice, 'HIT', 'limit=1');
    const next = (await list(app.api, alice, 'limit=1').expect(200)).body.next as { iterator: string };
    const rest = await list(app.api, alice, `limit=1&from=${encodeURIComponent(next.iterator)}`).expect(200);
    assert.equal(rest.headers['x-cache'], undefined);
    assert.notEqual(chatsOf(rest)[0]?.chat_id, page[0]?.chat_id);
  });

  describe('the chats change log', () => {
    const stores: CacheStore[] = [];
    const storeOf = (redisUrl: string | undefined) => {
      const store = createCacheStore(redisUrl, createLogger('silent'));
      stores.push(store);
      return store;
    };
    after(async () => {
      await Promise.all(stores.map((store) => store.close()));
    });

    for (const backend of ['memory', 'redis'] as const) {
      const redisUrl = backend === 'redis' ? profile.env.REDIS_URL : undefined;
      if (backend === 'redis' && !redisUrl) continue;

      it(`when members are appended (${backend}), then a read tells exactly what changed after a position, or that it cannot`, async () => {
        const store = storeOf(redisUrl);
        const log = `test:${hashTag(randomUUID())}`;
        const keep = 3;
        // Redis: once the store is connected.
        await eventually(async () => (await store.read(['ready'])).length === 1);
        assert.deepEqual(await store.changesSince(log, 0, 10, keep), {
          position: 0,
          members: [],
          complete: true,
        });
        await store.append(log, 'a', keep);
        await store.append(log, 'b', keep);
        await store.append(log, 'a', keep);
        const all = await store.changesSince(log, 1, 10, keep);
        assert.equal(all.position, 3);
        assert.deepEqual([...all.members].sort(), ['a', 'b']);
        assert.equal(all.complete, true);
        assert.deepEqual(await store.changesSince(log, 3, 10, keep), {
          position: 3,
          members: [],
          complete: true,
        });
        // More changed than the limit: not complete.
        assert.equal((await store.changesSince(log, 0, 1, keep)).complete, false);
        // Past `keep` members the oldest go: positions before them can no longer be answered.
        for (const member of ['c', 'd', 'e']) await store.append(log, member, keep);
        assert.equal((await store.changesSince(log, 2, 10, keep)).complete, false);
        const recent = await store.changesSince(log, 4, 10, keep);
        assert.deepEqual([...recent.members].sort(), ['d', 'e']);
        assert.equal(recent.complete, true);
        // A position the log never reached (it was lost): not complete.
        assert.equal((await store.changesSince(log, 99, 10, keep)).complete, false);
      });
    }
  });

  if (profile.services && profile.env.REDIS_URL) {
    const redisUrl = profile.env.REDIS_URL;

    describe('with two instances on the same Postgres and Redis', () => {
      const { a, b } = twoApps();

      it('when a message is sent through A, then the list B had cached is stale on B at once', async () => {
        const { alice, bob, second } = await twoChats(a().api);
        await list(b().api, alice).expect(200);
        await expectList(b().api, alice, 'HIT');
        await send(a().api, bob, second.chatId, second.bob, 'through A');
        assert.equal((await expectList(b().api, alice, 'MISS'))[0]?.last_message?.text, 'through A');
      });
    });

    describeSingleRedis('with two instances, one of them cut off from Redis', function () {
      this.timeout(60_000);
      const proxy = TcpProxy.to(redisUrl);
      let cut: TestApp;
      let linked: TestApp;

      before(async () => {
        await proxy.start();
        [cut, linked] = await Promise.all([startApp({ REDIS_URL: proxy.proxiedUrl(redisUrl) }), startApp()]);
      });
      after(async () => {
        await Promise.all([cut.close(), linked.close()]);
        await proxy.close();
      });

      it('when the cut-off instance acknowledges a message, then it never lists without it, and the other instance does once it is back', async () => {
        const { alice, bob, second } = await twoChats(linked.api);
        await expectList(linked.api, alice, 'HIT');
        await proxy.cut();
        await send(cut.api, bob, second.chatId, second.bob, 'during the cut');
        const lastTexts = (chats: ListedChat[]) => chats.map((chat) => chat.last_message?.text);
        assert.equal(lastTexts(chatsOf(await list(cut.api, alice).expect(200)))[0], 'during the cut');

        await proxy.restore();
        await eventually(async () => {
          assert.equal(lastTexts(chatsOf(await list(cut.api, alice).expect(200)))[0], 'during the cut');
          return lastTexts(chatsOf(await list(linked.api, alice).expect(200)))[0] === 'during the cut';
        }, 10_000);
      });
    });
  }
});
