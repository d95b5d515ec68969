import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sharedApp, type TestApp } from './support/app.js';
import { createChat, json, join, registerAndLogin, send, unique, type User } from './support/fixtures.js';
import { profile } from './support/profile.js';
import type { Knex } from '../src/infra/db.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Member {
  user: User;
  chatId: string;
  memberId: string;
  displayName: string;
}

interface HistoryMessage {
  text: string;
  message_id: string;
  user_id: string;
  user_name: string;
  created_at: string;
}

interface HistoryPage {
  messages: HistoryMessage[];
  next?: { iterator: string };
}

async function backendPid(db: Knex): Promise<number> {
  const { rows } = await db.raw<{ rows: { pid: number }[] }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

/** Backends (other than `except`) waiting for a lock that one of `holders` holds. */
async function waitingOn(db: Knex, holders: number[], except: number[] = []): Promise<number[]> {
  const { rows } = await db.raw<{ rows: { pid: number }[] }>(
    'SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && ?::int[] AND NOT (pid = ANY(?::int[]))',
    [holders, except.length ? except : [0]],
  );
  return rows.map((row) => row.pid);
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/**
 * Polls the server (no deadline of its own) until `promise` settles (→ undefined) or a backend other
 * than `holders` waits for a lock one of `holders` holds (→ that backend's pid).
 */
async function settlesOrBlocks(
  db: Knex,
  promise: Promise<unknown>,
  holders: number[],
): Promise<number | undefined> {
  const state = { settled: false };
  const settle = () => (state.settled = true);
  void promise.then(settle, settle);
  for (;;) {
    if (state.settled) return undefined;
    const [pid] = await waitingOn(db, holders, holders);
    if (pid !== undefined) return pid;
    await tick();
  }
}

describe('messages', () => {
  let app: TestApp;

  before(async () => {
    app = await sharedApp();
  });

  /** A new user in a new chat of their own: every test gets its own history. */
  async function newMember(): Promise<Member> {
    const user = await registerAndLogin(app.api);
    const chatId = await createChat(app.api, user);
    const displayName = unique('Name');
    const memberId = await join(app.api, user, chatId, displayName);
    return { user, chatId, memberId, displayName };
  }

  async function sendAll(m: Member, texts: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const text of texts) ids.push(await send(app.api, m.user, m.chatId, m.memberId, text));
    return ids;
  }

  async function page(m: Member, query: string): Promise<HistoryPage> {
    const res = await app.api.get(`/v1/chats/${m.chatId}/messages?${query}`).set(m.user.auth).expect(200);
    return res.body as HistoryPage;
  }

  /** Follows `next` from the first page to the end; returns every page. */
  async function walk(m: Member, limit: number): Promise<HistoryPage[]> {
    const pages: HistoryPage[] = [await page(m, `limit=${limit}`)];
    while (pages.at(-1)!.next) {
      const cursor = encodeURIComponent(pages.at(-1)!.next!.iterator);
      pages.push(await page(m, `limit=${limit}&from=${cursor}`));
      assert.ok(pages.length < 1000, 'pagination does not end');
    }
    return pages;
  }

  /** Follows `next` from `from` (the first page when undefined) to the end; each page with the `from` that gave it. */
  async function walkFrom(
    m: Member,
    limit: number,
    from: string | undefined,
  ): Promise<(HistoryPage & { from: string | undefined })[]> {
    const pages: (HistoryPage & { from: string | undefined })[] = [];
    for (let cursor = from; ;) {
      const query = cursor === undefined ? '' : `&from=${encodeURIComponent(cursor)}`;
      const current = { ...(await page(m, `limit=${limit}${query}`)), from: cursor };
      pages.push(current);
      if (!current.next) return pages;
      cursor = current.next.iterator;
      assert.ok(pages.length < 1000, 'pagination does not end');
    }
  }

  const texts = (p: HistoryPage) => p.messages.map((message) => message.text);
  const numbered = (count: number, prefix = 'm') =>
    Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);

  describe('POST /v1/chats/{chat_id}/messages', () => {
    let alice: Member;

    beforeEach(async () => {
      alice = await newMember();
    });

    it('when a member posts, then it answers 201 with a uuid message_id', async () => {
      // Act
      const res = await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .set(alice.user.auth)
        .send({ message: 'hello' })
        .expect(201);

      // Assert
      assert.match(res.body.message_id, UUID);
      const history = await page(alice, 'limit=10');
      assert.deepEqual(
        history.messages.map((m) => m.message_id),
        [res.body.message_id],
      );
    });

    describe('when the caller is not a member of the chat', () => {
      let mallory: User;
      let malloryOwnMemberId: string;
      let nonexistent: { status: number; body: unknown };

      beforeEach(async () => {
        mallory = await registerAndLogin(app.api);
        malloryOwnMemberId = await join(app.api, mallory, await createChat(app.api, mallory));
        const res = await app.api
          .post(`/v1/chats/${randomUUID()}/messages?user_id=${alice.memberId}`)
          .set(mallory.auth)
          .send({ message: 'probe' });
        nonexistent = { status: res.status, body: res.body };
      });

      const userIds: [string, () => string][] = [
        ["a member's id of that chat", () => alice.memberId],
        ['their own member id from another chat', () => malloryOwnMemberId],
        ['a random uuid', () => randomUUID()],
        ['"random_user"', () => 'random_user'],
      ];
      for (const [label, userId] of userIds) {
        it(`when posting with ${label}, then it answers 404 chat-not-found exactly like a chat that does not exist`, async () => {
          // Act
          const res = await app.api
            .post(`/v1/chats/${alice.chatId}/messages?user_id=${userId()}`)
            .set(mallory.auth)
            .send({ message: 'intrusion' })
            .expect(404, { message: 'chat-not-found' });

          // Assert
          assert.deepEqual({ status: res.status, body: res.body }, nonexistent);
          assert.deepEqual(texts(await page(alice, 'limit=10')), []);
        });
      }
    });

    it("when a member posts with another member's user_id, then it answers 404 user-not-found", async () => {
      // Arrange
      const bob = await registerAndLogin(app.api);
      const bobMemberId = await join(app.api, bob, alice.chatId, 'Bob');

      // Act
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .set(bob.auth)
        .send({ message: 'pretending to be Alice' })
        .expect(404, { message: 'user-not-found' });

      // Assert: nothing was stored, and Bob can still post as himself.
      assert.deepEqual(texts(await page(alice, 'limit=10')), []);
      await send(app.api, bob, alice.chatId, bobMemberId, 'as myself');
    });

    it('when a member posts with their own member id of another chat, then it answers 404 user-not-found', async () => {
      // Arrange
      const otherChatId = await createChat(app.api, alice.user);
      const otherMemberId = await join(app.api, alice.user, otherChatId);

      // Act + Assert
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${otherMemberId}`)
        .set(alice.user.auth)
        .send({ message: 'wrong chat' })
        .expect(404, { message: 'user-not-found' });
    });

    const unknownUsers: [string, () => string][] = [
      ['"random_user"', () => 'random_user'],
      ['a random uuid', () => randomUUID()],
    ];
    for (const [label, userId] of unknownUsers) {
      it(`when user_id is ${label}, then it answers 404 user-not-found`, async () => {
        await app.api
          .post(`/v1/chats/${alice.chatId}/messages?user_id=${userId()}`)
          .set(alice.user.auth)
          .send({ message: 'hello' })
          .expect(404, { message: 'user-not-found' });
      });
    }

    it('when user_id is missing, then it answers 400 bad-parameters', async () => {
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages`)
        .set(alice.user.auth)
        .send({ message: 'hello' })
        .expect(400, { message: 'bad-parameters' });
    });

    const unknownChats: [string, () => string][] = [
      ['"random_chat"', () => 'random_chat'],
      ['a random uuid', () => randomUUID()],
    ];
    for (const [label, chatId] of unknownChats) {
      it(`when the chat id is ${label}, then posting answers 404 chat-not-found`, async () => {
        await app.api
          .post(`/v1/chats/${chatId()}/messages?user_id=${alice.memberId}`)
          .set(alice.user.auth)
          .send({ message: 'hello' })
          .expect(404, { message: 'chat-not-found' });
      });
    }

    it('when there is no Authorization header, then posting answers 401 auth-failed', async () => {
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .send({ message: 'hello' })
        .expect(401, { message: 'auth-failed' });
    });

    const invalidMessages: [string, unknown][] = [
      ['empty', ''],
      ['10001 characters long', 'a'.repeat(10_001)],
      ['10001 emoji long', '😀'.repeat(10_001)],
      ['holding a NUL character', 'before\u0000after'],
      ['a number', 12345],
      ['null', null],
    ];
    for (const [label, message] of invalidMessages) {
      it(`when the message is ${label}, then it answers 400 bad-parameters and stores nothing`, async () => {
        // Act
        await app.api
          .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
          .set(alice.user.auth)
          .send({ message })
          .expect(400, { message: 'bad-parameters' });

        // Assert
        assert.deepEqual(texts(await page(alice, 'limit=10')), []);
      });
    }

    it('when the message field is missing, then it answers 400 bad-parameters', async () => {
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .set(alice.user.auth)
        .send({ text: 'wrong field' })
        .expect(400, { message: 'bad-parameters' });
    });

    it('when the message holds a lone surrogate (not encodable), then it answers 400 bad-parameters', async () => {
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .set(alice.user.auth)
        .set(json)
        .send('{"message":"broken \\ud800 text"}')
        .expect(400, { message: 'bad-parameters' });
    });

    const longMessages: [string, string][] = [
      ['10000 ASCII characters', 'a'.repeat(10_000)],
      ['10000 emoji (20000 UTF-16 units)', '😀'.repeat(10_000)],
    ];
    for (const [label, message] of longMessages) {
      it(`when the message is ${label}, then it is stored and read back unchanged`, async () => {
        // Act
        await send(app.api, alice.user, alice.chatId, alice.memberId, message);

        // Assert
        const history = await page(alice, 'limit=1');
        assert.equal(history.messages[0]!.text, message);
      });
    }

    it('when the message has Cyrillic, emoji and combining characters, then history returns it exactly', async () => {
      // Arrange
      const message = 'Привет, мир! Ёжик 👋🏽 👨‍👩‍👧 🇺🇦 e\u0301 𝔘𝔫𝔦 — «кавычки» \t tab\nnew line "quotes" \\ ✓';

      // Act
      await send(app.api, alice.user, alice.chatId, alice.memberId, message);

      // Assert
      const history = await page(alice, 'limit=1');
      assert.equal(history.messages[0]!.text, message);
    });

    it('when unknown extra query parameters are sent, then they are ignored', async () => {
      // Act
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}&foo=bar&limit=abc&from=junk`)
        .set(alice.user.auth)
        .send({ message: 'extra params' })
        .expect(201);

      // Assert
      assert.deepEqual(texts(await page(alice, 'limit=10&foo=bar')), ['extra params']);
    });
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
          .expect(400, { message: 'bad-parameters' });
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

    // Two posts can only be in flight at once on PostgreSQL: PGlite serves one connection at a time.
    if (profile.services) {
      it('when an earlier post commits after later ones were paged past, then continuing from the last cursor still returns it', async () => {
        // Arrange: Alice's post is held open mid-insert (a lock on her member row delays its foreign key
        // check) while Bob's later posts commit and a reader pages past them.
        const knex = app.service.db.knex;
        const bob = await registerAndLogin(app.api);
        const bobMemberId = await join(app.api, bob, alice.chatId, 'Bob');
        await sendAll(alice, ['m1']);
        const hold = await knex.transaction();
        const pending: Promise<unknown>[] = [];
        try {
          const holder = await backendPid(hold);
          await hold.raw('SELECT id FROM members WHERE id = ? FOR UPDATE', [alice.memberId]);
          const slow = send(app.api, alice.user, alice.chatId, alice.memberId, 'slow');
          pending.push(slow);
          const slowPid = await settlesOrBlocks(knex, slow, [holder]);
          assert.ok(slowPid !== undefined, "Alice's post did not wait for the lock on her member row");
          const m3 = send(app.api, bob, alice.chatId, bobMemberId, 'm3');
          pending.push(m3);
          // An implementation that serialises posts per chat makes Bob wait for Alice: nothing to page past then.
          const m4Sent = (await settlesOrBlocks(knex, m3, [holder, slowPid])) === undefined;
          if (m4Sent) await send(app.api, bob, alice.chatId, bobMemberId, 'm4');
          const before = await walkFrom(alice, 1, undefined);

          // Act: Alice's post commits; the reader goes on from the cursor of its last page.
          await hold.commit();
          await Promise.all(pending);
          if (!m4Sent) await send(app.api, bob, alice.chatId, bobMemberId, 'm4');
          const after = await walkFrom(alice, 1, before.at(-1)!.from);

          // Assert: every message was seen exactly once, in history order.
          const seen = [...before.slice(0, -1), ...after].flatMap((p) => texts(p));
          assert.deepEqual(seen, ['m1', 'slow', 'm3', 'm4']);
        } finally {
          if (!hold.isCompleted()) await hold.rollback();
          await Promise.allSettled(pending);
        }
      });
    }
  });
});
