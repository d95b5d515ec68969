import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sharedApp, type TestApp } from './support/app.js';
import { badParameters, registerAndLogin, send } from './support/fixtures.js';
import { historyReader, numbered, type HistoryPage, type Member } from './support/history.js';

interface PositionedPage extends HistoryPage {
  prev?: { iterator: string };
}

const texts = (page: HistoryPage) => page.messages.map((message) => message.text);
const q = (cursor: string) => encodeURIComponent(cursor);

describe('history from any position', () => {
  let app: TestApp;
  let reader: ReturnType<typeof historyReader>;
  let m: Member;
  let ids: string[];
  const all = numbered(11);

  before(async () => {
    app = await sharedApp();
    reader = historyReader(() => app);
    m = await reader.newMember();
    ids = await reader.sendAll(m, all);
  });

  const page = (query: string) => reader.page(m, query) as Promise<PositionedPage>;

  describe('anchor=newest', () => {
    it('when the chat has more than limit messages, then the newest are shown oldest first with prev and no next', async () => {
      const body = await page('limit=4&anchor=newest');
      assert.deepEqual(texts(body), ['m8', 'm9', 'm10', 'm11']);
      assert.ok(body.prev);
      assert.equal(body.next, undefined);
    });

    it('when prev is followed as before to the start, then every message is seen once, in order, and the first page has no prev', async () => {
      const pages: PositionedPage[] = [await page('limit=4&anchor=newest')];
      while (pages.at(-1)!.prev) {
        pages.push(await page(`limit=4&before=${q(pages.at(-1)!.prev!.iterator)}`));
        assert.ok(pages.length < 10, 'paging back does not end');
      }
      assert.deepEqual(pages.reverse().flatMap(texts), all);
      assert.deepEqual(texts(pages[0]!), ['m1', 'm2', 'm3']);
      assert.equal(pages[0]!.prev, undefined);
      // Every page read backwards has newer messages after it.
      for (const p of pages.slice(0, -1)) assert.ok(p.next);
    });

    it('when the chat has limit messages or fewer, then there is neither prev nor next', async () => {
      const small = await reader.newMember();
      assert.deepEqual(await reader.page(small, 'limit=5&anchor=newest'), { messages: [] });
      await reader.sendAll(small, ['only']);
      const body = (await reader.page(small, 'limit=5&anchor=newest')) as PositionedPage;
      assert.deepEqual(texts(body), ['only']);
      assert.equal(body.prev, undefined);
      assert.equal(body.next, undefined);
    });

    it('when a message is sent, then the cached newest page shows it at once', async () => {
      const chat = await reader.newMember();
      await reader.sendAll(chat, ['a', 'b']);
      const read = () =>
        app.api.get(`/v1/chats/${chat.chatId}/messages?limit=2&anchor=newest`).set(chat.user.auth);
      assert.equal((await read().expect(200)).headers['x-cache'], 'MISS');
      assert.equal((await read().expect(200)).headers['x-cache'], 'HIT');
      await send(app.api, chat.user, chat.chatId, chat.memberId, 'c');
      const res = await read().expect(200);
      assert.equal(res.headers['x-cache'], 'MISS');
      assert.deepEqual(texts(res.body as HistoryPage), ['b', 'c']);
    });
  });

  describe('before and next', () => {
    it('when next of a page read backwards is passed as from, then the following messages come with no gap', async () => {
      const newest = await page('limit=3&anchor=newest');
      const back = await page(`limit=3&before=${q(newest.prev!.iterator)}`);
      assert.deepEqual(texts(back), ['m6', 'm7', 'm8']);
      const forward = await page(`limit=3&from=${q(back.next!.iterator)}`);
      assert.deepEqual(texts(forward), ['m9', 'm10', 'm11']);
      // A `from` page answers as the homework says: no prev.
      assert.equal(forward.prev, undefined);
    });

    it('when before reaches the first page, then it has no prev, and before the first message the page is empty', async () => {
      // Any iterator is a position: the homework's first page of 3 ends at m3.
      const homework = await page('limit=3');
      const start = await page(`limit=5&before=${q(homework.next!.iterator)}`);
      assert.deepEqual(texts(start), ['m1', 'm2']);
      assert.equal(start.prev, undefined);
      assert.deepEqual(texts(await page(`limit=2&from=${q(start.next!.iterator)}`)), ['m3', 'm4']);

      const atFirst = await page('limit=1');
      const empty = await page(`limit=5&before=${q(atFirst.next!.iterator)}`);
      assert.deepEqual(empty.messages, []);
      assert.equal(empty.prev, undefined);
      assert.deepEqual(texts(await page(`limit=2&from=${q(empty.next!.iterator)}`)), ['m1', 'm2']);
    });

    it('when a homework page is read, then it never carries prev', async () => {
      const first = await page('limit=3');
      const second = await page(`limit=3&from=${q(first.next!.iterator)}`);
      assert.deepEqual(Object.keys(second).sort(), ['messages', 'next']);
    });
  });

  describe('around', () => {
    it('when around is a middle message, then it is centred and both prev and next are present', async () => {
      const body = await page(`limit=5&around=${ids[5]}`);
      assert.deepEqual(texts(body), ['m4', 'm5', 'm6', 'm7', 'm8']);
      assert.deepEqual(texts(await page(`limit=3&before=${q(body.prev!.iterator)}`)), ['m1', 'm2', 'm3']);
      assert.deepEqual(texts(await page(`limit=3&from=${q(body.next!.iterator)}`)), ['m9', 'm10', 'm11']);
      assert.deepEqual(texts(await page(`limit=4&around=${ids[5]}`)), ['m5', 'm6', 'm7', 'm8']);
      assert.deepEqual(texts(await page(`limit=1&around=${ids[5]}`)), ['m6']);
    });

    it('when around is the first message, then it is included, with next and no prev', async () => {
      const body = await page(`limit=5&around=${ids[0]}`);
      // Centred: two slots before it, none of them filled.
      assert.deepEqual(texts(body), ['m1', 'm2', 'm3']);
      assert.equal(body.prev, undefined);
      assert.deepEqual(texts(await page(`limit=1&from=${q(body.next!.iterator)}`)), ['m4']);
    });

    it('when around is the last message, then it is included, with prev and no next', async () => {
      const body = await page(`limit=5&around=${ids.at(-1)}`);
      assert.deepEqual(texts(body), ['m9', 'm10', 'm11']);
      assert.ok(body.prev);
      assert.equal(body.next, undefined);
    });

    it('when around is a message of another chat, unknown or malformed, then it answers 404 message-not-found', async () => {
      const other = await reader.newMember();
      const [foreign] = await reader.sendAll(other, ['elsewhere']);
      for (const around of [foreign, randomUUID(), 'random_message']) {
        await app.api
          .get(`/v1/chats/${m.chatId}/messages?limit=5&around=${around}`)
          .set(m.user.auth)
          .expect(404, { message: 'message-not-found' });
      }
    });

    it('when the caller is not a member, then it answers 404 chat-not-found whatever the position', async () => {
      const stranger = await registerAndLogin(app.api);
      for (const query of [
        `around=${ids[0]}`,
        'anchor=newest',
        `before=${q((await page('limit=1&anchor=newest')).prev!.iterator)}`,
      ]) {
        await app.api
          .get(`/v1/chats/${m.chatId}/messages?limit=5&${query}`)
          .set(stranger.auth)
          .expect(404, { message: 'chat-not-found' });
      }
    });
  });

  describe('bad parameters', () => {
    it('when two positions are given, then it answers 400 bad-parameters', async () => {
      const cursor = q((await page('limit=1&anchor=newest')).prev!.iterator);
      for (const query of [
        `from=${cursor}&before=${cursor}`,
        `anchor=newest&from=${cursor}`,
        `anchor=newest&around=${ids[0]}`,
        `before=${cursor}&around=${ids[0]}`,
      ]) {
        await app.api
          .get(`/v1/chats/${m.chatId}/messages?limit=5&${query}`)
          .set(m.user.auth)
          .expect(400)
          .expect(badParameters(/only one of/));
      }
    });

    it('when anchor is not newest or before is unusable, then it answers 400', async () => {
      await app.api
        .get(`/v1/chats/${m.chatId}/messages?limit=5&anchor=oldest`)
        .set(m.user.auth)
        .expect(400)
        .expect(badParameters(/anchor/));
      await app.api
        .get(`/v1/chats/${m.chatId}/messages?limit=5&before=garbage`)
        .set(m.user.auth)
        .expect(400, { message: 'bad-cursor' });
    });
  });
});
