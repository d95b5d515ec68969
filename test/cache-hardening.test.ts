import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import type { Response } from 'supertest';
import { entryBytes, ExpiringMap } from '../src/infra/cache.js';

import type { CacheModule } from '../src/modules/cache/index.js';
import { SharedProbes } from '../src/modules/cache/shared-probes.js';
import { sharedApp, startApp, type Api, type TestApp } from './support/app.js';

import { registerAndLogin, send, type User, memberOfNewChat } from './support/fixtures.js';
import { profile } from './support/profile.js';

import { eventually } from './support/spawn.js';

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
const handMade = (position: string) =>
  encodeURIComponent(Buffer.from(`h1:${position}`).toString('base64url'));

function cacheOf(app: TestApp): CacheModule {
  const cache = app.service.modules.find((module) => module.name === 'cache');
  assert.ok(cache, 'the cache module is on');
  return cache as CacheModule;
}

/** The history pages of a chat the cache holds. */
const pagesHeld = (app: TestApp, chatId: string) => cacheOf(app).held(`history:pages:{${chatId}}`);

describe('cache hardening', () => {
  let app: TestApp;
  before(async () => {
    app = await sharedApp();
  });

  it('when someone who is not a member asks for an uncached page, then no page is kept for it', async () => {
    const chat = await chatWith(app.api, 'secret');
    const stranger = await registerAndLogin(app.api);
    await history(app.api, chat, 'limit=10', stranger).expect(404, { message: 'chat-not-found' });
    assert.equal((await pagesHeld(app, chat.chatId)).keys, 0);
    // The member's first read is the first one to reach the database.
    assert.equal((await history(app.api, chat).expect(200)).headers['x-cache'], 'MISS');
  });

  it('when someone asks for the history of a made-up chat id, then nothing is kept for it', async () => {
    const user = await registerAndLogin(app.api);
    const chatId = randomUUID();
    for (const limit of [10, 20]) {
      await app.api
        .get(`/v1/chats/${chatId}/messages?limit=${limit}`)
        .set(user.auth)
        .expect(404, { message: 'chat-not-found' });
    }
    assert.deepEqual(await pagesHeld(app, chatId), { keys: 0, bytes: 0 });
  });

  it('when a client asks for every limit and hand-made cursors, then only canonical pages are kept', async () => {
    const chat = await chatWith(app.api, ...Array.from({ length: 25 }, (_, i) => `m${i}`));
    for (let limit = 1; limit <= 30; limit++) await history(app.api, chat, `limit=${limit}`).expect(200);
    // Positions the server never led to: the start, and one message in.
    const first = await history(app.api, chat, 'limit=1').expect(200);
    const oneIn = Buffer.from(first.body.next.iterator as string, 'base64url')
      .toString()
      .slice(3);
    for (const position of ['0', '00', oneIn, `0${oneIn}`]) {
      const res = await history(app.api, chat, `limit=10&from=${handMade(position)}`).expect(200);
      assert.equal(res.headers['x-cache'], 'MISS');
    }
    // First pages of limits 1, 2, 5, 10 and 20 only.
    assert.equal((await pagesHeld(app, chat.chatId)).keys, 5);

    // Following the server's own cursors is cached page by page.
    let query = 'limit=10';
    const walked: string[] = [];
    for (let page = 0; page < 3; page++) {
      const res = await history(app.api, chat, query).expect(200);
      walked.push(...texts(res));
      if (res.body.next) query = `limit=10&from=${encodeURIComponent(res.body.next.iterator as string)}`;
    }
    assert.equal(walked.length, 25);
    assert.equal((await pagesHeld(app, chat.chatId)).keys, 7);
    query = 'limit=10';
    for (let page = 0; page < 3; page++) {
      const res = await history(app.api, chat, query).expect(200);
      assert.equal(res.headers['x-cache'], 'HIT');
      if (res.body.next) query = `limit=10&from=${encodeURIComponent(res.body.next.iterator as string)}`;
    }
  });

  it('when reads share last-page probes, then each gets the answer of a probe started after it began', async () => {
    const probes = new SharedProbes<string>();
    const runs: { answer: (value: string) => void; fail: (error: Error) => void }[] = [];
    const run = () => new Promise<string>((resolve, reject) => runs.push({ answer: resolve, fail: reject }));
    const early = probes.ticket();
    const first = probes.probe('chat', early, run);
    // Began before the first probe started: it shares it.
    const alongside = probes.probe('chat', early, run);
    // Began after: it waits for a probe of its own, shared with every read that began meanwhile.
    const late = probes.ticket();
    const second = probes.probe('chat', late, run);
    const alsoLate = probes.probe('chat', probes.ticket(), run);
    const otherChat = probes.probe('other', late, run);
    assert.equal(runs.length, 2, 'one probe per key until the first ends');
    runs[0]!.fail(new Error('database down'));
    await assert.rejects(first, /database down/);
    await assert.rejects(alongside, /database down/);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs.length, 3, 'the next probe starts once the one in flight has ended');
    runs[2]!.answer('after');
    runs[1]!.answer('other');
    assert.deepEqual(await Promise.all([second, alsoLate, otherChat]), ['after', 'after', 'other']);
    // Nothing in flight: a new read starts its own.
    const again = probes.probe('chat', probes.ticket(), run);
    assert.equal(runs.length, 4);
    runs[3]!.answer('again');
    assert.equal(await again, 'again');
  });

  it('when the in-memory store is written past its capacity, then it holds at most that many bytes', () => {
    const capacity = 10_000;
    const map = new ExpiringMap<string>({ capacity, sweepEveryMs: 60_000, weigh: entryBytes });
    // Two bytes a char in V8 for text like this: a char count would under-count it by half.
    const text = 'сообщение'.repeat(50);
    for (let i = 0; i < 100; i++) map.set(`history:page:${i}`, text);
    assert.ok(map.held <= capacity, `${map.held} bytes held`);
    assert.ok(map.held >= capacity - entryBytes('history:page:99', text), `${map.held} bytes held`);
    assert.ok(entryBytes('k', text) >= 2 * text.length);
  });

  // Services profile: two instances share Redis; one of them reaches it through a proxy the test cuts.
  if (profile.services && profile.env.REDIS_URL) {
    const redisUrl = profile.env.REDIS_URL;

    describe('with two instances, one of them cut off from Redis', function () {
      this.timeout(60_000);
      const proxy = TcpProxy.to(redisUrl);
      let cut: TestApp;
      let linked: TestApp;

      before(async () => {
        await proxy.start();
        [cut, linked] = await Promise.all([startApp({ REDIS_URL: proxy.proxiedUrl(redisUrl) }), startApp()]);
      });
      afterEach(async () => {
        if (!proxy.listening) await proxy.restore();
      });
      after(async () => {
        await Promise.all([cut.close(), linked.close()]);
        await proxy.close();
      });

      it('when a message is acknowledged by the cut-off instance, then the other instance never serves a page without it', async () => {
        const chat = await chatWith(linked.api, 'before');
        await eventually(async () => (await history(cut.api, chat)).headers['x-cache'] === 'HIT', 10_000);
        assert.equal((await history(linked.api, chat).expect(200)).headers['x-cache'], 'HIT');

        await proxy.cut();
        await send(cut.api, chat.user, chat.chatId, chat.memberId, 'during');
        const res = await history(linked.api, chat).expect(200);
        assert.deepEqual(texts(res), ['before', 'during']);
        assert.equal(res.headers['x-cache'], 'MISS');
        // Read again (now cached with the new message) and with the other cached shapes.
        assert.deepEqual(texts(await history(linked.api, chat).expect(200)), ['before', 'during']);
        assert.deepEqual(texts(await history(linked.api, chat, 'limit=20').expect(200)), [
          'before',
          'during',
        ]);

        await proxy.restore();
        await eventually(async () => {
          const again = await history(cut.api, chat).expect(200);
          assert.deepEqual(texts(again), ['before', 'during']);
          return again.headers['x-cache'] === 'HIT';
        }, 10_000);
      });

      it('when a user logs out on the cut-off instance, then it is 503 until the logout can hold everywhere, and after a 200 no instance accepts the token', async () => {
        const chat = await chatWith(linked.api, 'hi');
        await eventually(async () => (await history(cut.api, chat)).headers['x-cache'] === 'HIT', 10_000);
        // The session is in the shared cache now.
        await history(linked.api, chat).expect(200);

        await proxy.cut();
        const logout = await cut.api.post('/v1/auth/logout').set(chat.user.auth);
        assert.equal(logout.status, 503, 'a logout that only this instance would remember is not a 200');
        assert.deepEqual(logout.body, { message: 'service-unavailable' });
        // Nothing happened: the session works everywhere, and the client may retry.
        await history(linked.api, chat).expect(200);
        await history(cut.api, chat).expect(200);

        await proxy.restore();
        // 503 until this instance reaches Redis again. (A 401 would mean a refused attempt's
        // revocation did land after all, late: the token is then refused everywhere too.)
        let status = 503;
        await eventually(async () => {
          status = (await cut.api.post('/v1/auth/logout').set(chat.user.auth)).status;
          return status !== 503;
        }, 10_000);
        assert.ok(status === 200 || status === 401, `logout answered ${status}`);
        await history(linked.api, chat).expect(401, { message: 'invalid-session-id' });
        await history(cut.api, chat).expect(401, { message: 'invalid-session-id' });
      });
    });

    describe('with two instances cut off from Redis, the one without the message reconnecting first', function () {
      this.timeout(60_000);
      const proxies = [TcpProxy.to(redisUrl), TcpProxy.to(redisUrl)] as const;
      let sender: TestApp;
      let reader: TestApp;

      before(async () => {
        await Promise.all(proxies.map((proxy) => proxy.start()));
        [sender, reader] = await Promise.all([
          startApp({ REDIS_URL: proxies[0].proxiedUrl(redisUrl) }),
          startApp({ REDIS_URL: proxies[1].proxiedUrl(redisUrl) }),
        ]);
      });
      after(async () => {
        await Promise.all([sender.close(), reader.close()]);
        await Promise.all(proxies.map((proxy) => proxy.close()));
      });

      it('when the reader is back first, then it does not serve the page cached before the message', async () => {
        const [senderProxy, readerProxy] = proxies;
        const chat = await chatWith(sender.api, 'before');
        await eventually(async () => (await history(sender.api, chat)).headers['x-cache'] === 'HIT', 10_000);
        await eventually(async () => (await history(reader.api, chat)).headers['x-cache'] === 'HIT', 10_000);

        await Promise.all([senderProxy.cut(), readerProxy.cut()]);
        await send(sender.api, chat.user, chat.chatId, chat.memberId, 'during');
        await readerProxy.restore();
        // Until the reader reaches Redis it answers from the database; after, never the old page.
        await eventually(async () => {
          const res = await history(reader.api, chat).expect(200);
          assert.deepEqual(texts(res), ['before', 'during']);
          return res.headers['x-cache'] === 'HIT';
        }, 10_000);
        await senderProxy.restore();
      });
    });
  }
});
