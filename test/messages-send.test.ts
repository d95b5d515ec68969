import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sharedApp, type TestApp } from './support/app.js';
import {
  badParameters,
  createChat,
  join,
  json,
  registerAndLogin,
  send,
  type User,
} from './support/fixtures.js';
import { historyReader, texts, type Member } from './support/history.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

describe('sending messages', () => {
  let app: TestApp;
  const { newMember, page } = historyReader(() => app);

  before(async () => {
    app = await sharedApp();
  });

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

    it('when sends are refused (a made-up or another member id), then they take no event number: the next event of the chat follows the last one', async () => {
      const eventSeq = async () => {
        const row = await app.service.db
          .knex('chats')
          .where({ id: alice.chatId })
          .first<{ event_seq: string } | undefined>('event_seq');
        return Number(row?.event_seq);
      };
      const bob = await registerAndLogin(app.api);
      await join(app.api, bob, alice.chatId, 'Bob');
      const before = await eventSeq();
      for (const memberId of [randomUUID(), alice.memberId]) {
        await app.api
          .post(`/v1/chats/${alice.chatId}/messages?user_id=${memberId}`)
          .set(bob.auth)
          .send({ message: 'refused' })
          .expect(404, { message: 'user-not-found' });
      }
      // A gap in a chat's event numbers holds its next event on every instance until the database is
      // read: a refused send must not leave one.
      assert.equal(await eventSeq(), before, 'a refused send took an event number');
      await send(app.api, alice.user, alice.chatId, alice.memberId, 'accepted');
      assert.equal(await eventSeq(), before + 1);
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
        .expect(400)
        .expect(badParameters());
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
          .expect(400)
          .expect(badParameters());

        // Assert
        assert.deepEqual(texts(await page(alice, 'limit=10')), []);
      });
    }

    it('when the message field is missing, then it answers 400 bad-parameters', async () => {
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .set(alice.user.auth)
        .send({ text: 'wrong field' })
        .expect(400)
        .expect(badParameters());
    });

    it('when the message holds a lone surrogate (not encodable), then it answers 400 bad-parameters', async () => {
      await app.api
        .post(`/v1/chats/${alice.chatId}/messages?user_id=${alice.memberId}`)
        .set(alice.user.auth)
        .set(json)
        .send('{"message":"broken \\ud800 text"}')
        .expect(400)
        .expect(badParameters());
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
});
