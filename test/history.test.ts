import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sharedApp, type TestApp } from './support/app.js';
import { badParameters, createChat, join, registerAndLogin, send } from './support/fixtures.js';
import { historyReader, numbered, texts, type HistoryPage, type Member } from './support/history.js';

describe('reading history', () => {
  let app: TestApp;
  const { newMember, sendAll, page, walk } = historyReader(() => app);

  before(async () => {
    app = await sharedApp();
  });

  describe('GET /v1/chats/{chat_id}/messages', () => {
    let alice: Member;

    beforeEach(async () => {
      alice = await newMember();
    });

    it('when a chat has no messages, then the page is empty and has no next', async () => {
      // Act
      const history = await page(alice, 'limit=10');

      // Assert
      assert.deepEqual(history.messages, []);
      assert.equal('next' in history, false);
    });

    it('when messages were posted, then history lists them oldest first with every field', async () => {
      // Arrange
      const before = Date.now();
      const ids = await sendAll(alice, ['first', 'second', 'third']);

      // Act
      const history = await page(alice, 'limit=10');

      // Assert
      assert.deepEqual(texts(history), ['first', 'second', 'third']);
      assert.deepEqual(
        history.messages.map((m) => m.message_id),
        ids,
      );
      let previous = 0;
      for (const message of history.messages) {
        assert.deepEqual(Object.keys(message).sort(), [
          'created_at',
          'message_id',
          'text',
          'user_id',
          'user_name',
        ]);
        assert.equal(message.user_id, alice.memberId);
        assert.equal(message.user_name, alice.displayName);
        const createdAt = Date.parse(message.created_at);
        assert.ok(createdAt >= before - 60_000 && createdAt <= Date.now() + 60_000, message.created_at);
        assert.ok(createdAt >= previous, 'created_at goes backwards');
        previous = createdAt;
      }
      assert.equal('next' in history, false);
    });

    it('when two members post in turn, then history keeps the order and tells who sent what', async () => {
      // Arrange
      const bob = await registerAndLogin(app.api);
      const bobMemberId = await join(app.api, bob, alice.chatId, 'Bob');
      await send(app.api, alice.user, alice.chatId, alice.memberId, 'hi Bob');
      await send(app.api, bob, alice.chatId, bobMemberId, 'hi Alice');
      await send(app.api, alice.user, alice.chatId, alice.memberId, 'bye');

      // Act
      const res = await app.api.get(`/v1/chats/${alice.chatId}/messages?limit=10`).set(bob.auth).expect(200);

      // Assert
      assert.deepEqual(
        (res.body as HistoryPage).messages.map((m) => [m.text, m.user_id, m.user_name]),
        [
          ['hi Bob', alice.memberId, alice.displayName],
          ['hi Alice', bobMemberId, 'Bob'],
          ['bye', alice.memberId, alice.displayName],
        ],
      );
    });

    it('when 5 messages are read 2 at a time, then the pages hold 2, 2 and 1 with next on all but the last', async () => {
      // Arrange
      await sendAll(alice, numbered(5));

      // Act
      const pages = await walk(alice, 2);

      // Assert
      assert.deepEqual(pages.map(texts), [['m1', 'm2'], ['m3', 'm4'], ['m5']]);
      assert.deepEqual(
        pages.map((p) => 'next' in p),
        [true, true, false],
      );
    });

    it('when exactly limit messages are left, then that page has no next', async () => {
      // Arrange
      await sendAll(alice, numbered(4));

      // Act
      const pages = await walk(alice, 2);

      // Assert
      assert.deepEqual(pages.map(texts), [
        ['m1', 'm2'],
        ['m3', 'm4'],
      ]);
      assert.equal('next' in pages[1]!, false);
    });

    it('when the chat holds exactly limit messages, then the first page has them all and no next', async () => {
      // Arrange
      await sendAll(alice, numbered(3));

      // Act
      const history = await page(alice, 'limit=3');

      // Assert
      assert.deepEqual(texts(history), ['m1', 'm2', 'm3']);
      assert.equal('next' in history, false);
    });

    it('when next.iterator is followed as from, then every message is seen exactly once, in order', async () => {
      // Arrange
      const ids = await sendAll(alice, numbered(10));

      // Act
      const pages = await walk(alice, 3);

      // Assert
      assert.deepEqual(
        pages.map((p) => p.messages.length),
        [3, 3, 3, 1],
      );
      assert.deepEqual(
        pages.flatMap((p) => p.messages.map((m) => m.message_id)),
        ids,
      );
      for (const p of pages.slice(0, -1)) assert.equal(typeof p.next!.iterator, 'string');
    });

    it('when a message is posted after the last page, then the cursor of the last page returns it', async () => {
      // Arrange: m1..m5, limit 2 → the cursor that led to the last page [m5].
      await sendAll(alice, numbered(5));
      const pages = await walk(alice, 2);
      const lastCursor = encodeURIComponent(pages[1]!.next!.iterator);
      assert.deepEqual(texts(await page(alice, `limit=2&from=${lastCursor}`)), ['m5']);

      // Act
      await sendAll(alice, ['m6']);
      const after = await page(alice, `limit=2&from=${lastCursor}`);

      // Assert
      assert.deepEqual(texts(after), ['m5', 'm6']);
      assert.equal('next' in after, false);

      // And once more messages follow than fit, the same page gets a next leading to them.
      await sendAll(alice, ['m7']);
      const full = await page(alice, `limit=2&from=${lastCursor}`);
      assert.deepEqual(texts(full), ['m5', 'm6']);
      assert.ok(full.next);
      const rest = await page(alice, `limit=2&from=${encodeURIComponent(full.next.iterator)}`);
      assert.deepEqual(texts(rest), ['m7']);
      assert.equal('next' in rest, false);
    });

    it('when the page that had no next is read again after a new message, then it shows next', async () => {
      // Arrange
      await sendAll(alice, numbered(2));
      const first = await page(alice, 'limit=2');
      assert.equal('next' in first, false);

      // Act
      await sendAll(alice, ['m3']);
      const again = await page(alice, 'limit=2');

      // Assert
      assert.deepEqual(texts(again), ['m1', 'm2']);
      assert.ok(again.next);
      assert.deepEqual(texts(await page(alice, `limit=2&from=${encodeURIComponent(again.next.iterator)}`)), [
        'm3',
      ]);
    });

    it('when the same page is read twice, then both answers are identical', async () => {
      // Arrange
      await sendAll(alice, numbered(5));
      const first = await page(alice, 'limit=2');
      const cursor = encodeURIComponent(first.next!.iterator);

      // Act
      const a = await page(alice, `limit=2&from=${cursor}`);
      const b = await page(alice, `limit=2&from=${cursor}`);
      const firstAgain = await page(alice, 'limit=2');

      // Assert
      assert.deepEqual(b, a);
      assert.deepEqual(firstAgain, first);
      assert.deepEqual(texts(a), ['m3', 'm4']);
    });

    it("when two chats have messages, then each history shows only its own chat's messages", async () => {
      // Arrange
      const otherChatId = await createChat(app.api, alice.user);
      const other: Member = {
        user: alice.user,
        chatId: otherChatId,
        memberId: await join(app.api, alice.user, otherChatId, 'Elsewhere'),
        displayName: 'Elsewhere',
      };
      await sendAll(alice, ['a1']);
      await sendAll(other, ['b1']);
      await sendAll(alice, ['a2']);
      await sendAll(other, ['b2']);

      // Act
      const here = await walk(alice, 1);
      const there = await walk(other, 1);

      // Assert
      assert.deepEqual(here.flatMap(texts), ['a1', 'a2']);
      assert.deepEqual(there.flatMap(texts), ['b1', 'b2']);
    });

    const badLimits: [string, string][] = [
      ['0', 'limit=0'],
      ['1001', 'limit=1001'],
      ['-1', 'limit=-1'],
      ['1.5', 'limit=1.5'],
      ['"abc"', 'limit=abc'],
      ['empty', 'limit='],
      ['missing', ''],
    ];
    for (const [label, query] of badLimits) {
      it(`when limit is ${label}, then it answers 400 bad-parameters`, async () => {
        await app.api
          .get(`/v1/chats/${alice.chatId}/messages?${query}`)
          .set(alice.user.auth)
          .expect(400)
          .expect(badParameters());
      });
    }

    it('when limit is 1000, then it answers 200', async () => {
      // Arrange
      await sendAll(alice, ['only one']);

      // Act
      const history = await page(alice, 'limit=1000');

      // Assert
      assert.deepEqual(texts(history), ['only one']);
    });

    const badCursors: [string, string][] = [
      ['"garbage"', 'garbage'],
      ['base64 of junk', Buffer.from('some junk \u00ff\u0001').toString('base64')],
      ['base64url of junk', Buffer.from('{"seq":1}').toString('base64url')],
      ['a cursor-looking value with a non-numeric position', Buffer.from('h1:abc').toString('base64url')],
      ['a cursor-looking value with a negative position', Buffer.from('h1:-1').toString('base64url')],
      ['a cursor-looking value beyond bigint', Buffer.from('h1:99999999999999999999').toString('base64url')],
      ['4097 characters long', 'A'.repeat(4097)],
      ['holding a NUL character', 'abc\u0000def'],
    ];
    for (const [label, cursor] of badCursors) {
      it(`when from is ${label}, then it answers 400 bad-cursor`, async () => {
        // Arrange
        await sendAll(alice, ['m1']);

        // Act + Assert
        await app.api
          .get(`/v1/chats/${alice.chatId}/messages?limit=10&from=${encodeURIComponent(cursor)}`)
          .set(alice.user.auth)
          .expect(400, { message: 'bad-cursor' });
      });
    }

    it('when a non-member reads the chat, then it answers 404 chat-not-found exactly like a chat that does not exist', async () => {
      // Arrange
      await sendAll(alice, ['secret']);
      const mallory = await registerAndLogin(app.api);
      const missing = await app.api
        .get(`/v1/chats/${randomUUID()}/messages?limit=10`)
        .set(mallory.auth)
        .expect(404);

      // Act
      const res = await app.api
        .get(`/v1/chats/${alice.chatId}/messages?limit=10`)
        .set(mallory.auth)
        .expect(404, { message: 'chat-not-found' });

      // Assert
      assert.deepEqual(res.body, missing.body);
      assert.doesNotMatch(res.text, /secret/);
    });

    const unknownChats: [string, () => string][] = [
      ['"random_chat"', () => 'random_chat'],
      ['a random uuid', () => randomUUID()],
    ];
    for (const [label, chatId] of unknownChats) {
      it(`when the chat id is ${label}, then reading answers 404 chat-not-found`, async () => {
        await app.api
          .get(`/v1/chats/${chatId()}/messages?limit=10`)
          .set(alice.user.auth)
          .expect(404, { message: 'chat-not-found' });
      });
    }

    it('when there is no Authorization header, then reading answers 401 auth-failed', async () => {
      await app.api
        .get(`/v1/chats/${alice.chatId}/messages?limit=10`)
        .expect(401, { message: 'auth-failed' });
    });

    it('when 1100 messages are read 1000 at a time, then the pages hold 1000 and 100, in order', async () => {
      // Arrange: bulk-insert straight into the table (posting 1100 through the API would be slow).
      const bulk = Array.from({ length: 1100 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
      await app.service.db
        .knex('messages')
        .insert(bulk.map((text) => ({ chat_id: alice.chatId, member_id: alice.memberId, text })));

      // Act
      const pages = await walk(alice, 1000);

      // Assert
      assert.deepEqual(
        pages.map((p) => p.messages.length),
        [1000, 100],
      );
      assert.ok(pages[0]!.next);
      assert.equal('next' in pages[1]!, false);
      assert.deepEqual(pages.flatMap(texts), bulk);
      const ids = pages.flatMap((p) => p.messages.map((m) => m.message_id));
      assert.equal(new Set(ids).size, 1100);
      for (const message of pages[1]!.messages) assert.equal(message.user_name, alice.displayName);
    });
  });
});
