import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sharedApp, type TestApp } from './support/app.js';
import {
  badParameters,
  createChat,
  join,
  registerAndLogin,
  send,
  type User,
  unique,
} from './support/fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A random (version 4, RFC 4122 variant) uuid: 122 random bits, nothing derived from time or a counter.
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

describe('chats and members', () => {
  let app: TestApp;
  let alice: User;

  before(async () => {
    app = await sharedApp();
    alice = await registerAndLogin(app.api);
  });

  describe('POST /v1/chats', () => {
    it('when a signed-in user creates a chat, then it answers 201 with a uuid chat_id', async () => {
      // Arrange
      const body = { chat_name: unique('general') };

      // Act
      const res = await app.api.post('/v1/chats').set(alice.auth).send(body).expect(201);

      // Assert
      assert.match(res.body.chat_id, UUID);
    });

    it('when the same name is used twice, then two chats with different ids are created', async () => {
      // Arrange
      const name = unique('twice');

      // Act
      const first = await createChat(app.api, alice, name);
      const second = await createChat(app.api, alice, name);

      // Assert
      assert.match(first, UUID);
      assert.match(second, UUID);
      assert.notEqual(first, second);
    });

    const invalidNames: [string, unknown][] = [
      ['missing', undefined],
      ['empty', ''],
      ['256 characters long', 'x'.repeat(256)],
      ['a number', 42],
      ['null', null],
      ['an array', ['general']],
    ];
    for (const [label, chatName] of invalidNames) {
      it(`when chat_name is ${label}, then it answers 400 bad-parameters`, async () => {
        // Arrange
        const body = chatName === undefined ? { other: 'field' } : { chat_name: chatName };

        // Act + Assert
        await app.api.post('/v1/chats').set(alice.auth).send(body).expect(400).expect(badParameters());
      });
    }

    it('when chat_name is exactly 255 characters, then the chat is created', async () => {
      // Arrange
      const body = { chat_name: 'x'.repeat(255) };

      // Act
      const res = await app.api.post('/v1/chats').set(alice.auth).send(body).expect(201);

      // Assert
      assert.match(res.body.chat_id, UUID);
    });

    it('when chat_name is 255 emoji (more than 255 UTF-16 units), then the chat is created', async () => {
      // Arrange: "1..255 chars" counts characters, not UTF-16 code units or bytes.
      const body = { chat_name: '😀'.repeat(255) };

      // Act + Assert
      await app.api.post('/v1/chats').set(alice.auth).send(body).expect(201);
    });

    it('when there is no Authorization header, then it answers 401 auth-failed', async () => {
      await app.api
        .post('/v1/chats')
        .send({ chat_name: unique('anon') })
        .expect(401, { message: 'auth-failed' });
    });

    it('when chats are created, then their ids are random v4 uuids, never sequential', async () => {
      // Arrange + Act
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await createChat(app.api, alice));

      // Assert: random uuids, all different, and no shared leading run as counters or time-based ids have.
      for (const id of ids) assert.match(id, UUID_V4);
      assert.equal(new Set(ids).size, ids.length);
      const prefixes = new Set(ids.map((id) => id.slice(0, 8)));
      assert.equal(prefixes.size, ids.length, `ids share a prefix: ${ids.join(', ')}`);
    });
  });

  describe('POST /v1/chats/{chat_id}/users', () => {
    let chatId: string;

    beforeEach(async () => {
      chatId = await createChat(app.api, alice);
    });

    it('when a user joins a chat, then it answers 201 with a uuid member id', async () => {
      // Act
      const res = await app.api
        .post(`/v1/chats/${chatId}/users`)
        .set(alice.auth)
        .send({ user_name: 'Alice' })
        .expect(201);

      // Assert
      assert.match(res.body.user_id, UUID);
    });

    it('when the member id is used to post, then the post is accepted (it is a real member)', async () => {
      // Arrange
      const memberId = await join(app.api, alice, chatId, 'Alice');

      // Act + Assert
      await send(app.api, alice, chatId, memberId, 'hello');
    });

    it('when the same user joins again under a new name, then the member id stays and history shows the new name', async () => {
      // Arrange
      const firstId = await join(app.api, alice, chatId, 'Alice');
      await send(app.api, alice, chatId, firstId, 'sent under the first name');

      // Act
      const secondId = await join(app.api, alice, chatId, 'Alice Renamed');

      // Assert
      assert.equal(secondId, firstId);
      const history = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(alice.auth).expect(200);
      assert.equal(history.body.messages.length, 1);
      assert.equal(history.body.messages[0].user_id, firstId);
      assert.equal(history.body.messages[0].user_name, 'Alice Renamed');
    });

    it('when two different users join the same chat, then they get different member ids', async () => {
      // Arrange
      const bob = await registerAndLogin(app.api);

      // Act
      const aliceId = await join(app.api, alice, chatId, 'Same Name');
      const bobId = await join(app.api, bob, chatId, 'Same Name');

      // Assert
      assert.match(aliceId, UUID);
      assert.match(bobId, UUID);
      assert.notEqual(aliceId, bobId);
    });

    it('when the same user joins two chats, then each chat gives its own member id', async () => {
      // Arrange
      const otherChatId = await createChat(app.api, alice);

      // Act
      const here = await join(app.api, alice, chatId);
      const there = await join(app.api, alice, otherChatId);

      // Assert
      assert.notEqual(here, there);
    });

    const unknownChats: [string, () => string][] = [
      ['is "random_chat"', () => 'random_chat'],
      ['is not a uuid', () => 'not-a-uuid-1234'],
      ['is a uuid with one character too many', () => `${randomUUID()}0`],
      ['is a random uuid no chat has', () => randomUUID()],
    ];
    for (const [label, chat] of unknownChats) {
      it(`when the chat id ${label}, then joining answers 404 chat-not-found`, async () => {
        await app.api
          .post(`/v1/chats/${chat()}/users`)
          .set(alice.auth)
          .send({ user_name: 'Alice' })
          .expect(404, { message: 'chat-not-found' });
      });
    }

    it('when there is no Authorization header, then joining answers 401 auth-failed', async () => {
      await app.api
        .post(`/v1/chats/${chatId}/users`)
        .send({ user_name: 'Anonymous' })
        .expect(401, { message: 'auth-failed' });
    });

    it('when the Authorization header is malformed, then joining answers 401 auth-failed', async () => {
      await app.api
        .post(`/v1/chats/${chatId}/users`)
        .set('Authorization', 'Token abc')
        .send({ user_name: 'Anonymous' })
        .expect(401, { message: 'auth-failed' });
    });

    const invalidNames: [string, unknown][] = [
      ['missing', undefined],
      ['empty', ''],
      ['256 characters long', 'x'.repeat(256)],
      ['a number', 7],
    ];
    for (const [label, userName] of invalidNames) {
      it(`when the display name is ${label}, then joining answers 400 bad-parameters`, async () => {
        // Arrange
        const body = userName === undefined ? {} : { user_name: userName };

        // Act + Assert
        await app.api
          .post(`/v1/chats/${chatId}/users`)
          .set(alice.auth)
          .send(body)
          .expect(400)
          .expect(badParameters());
      });
    }

    it('when the display name is exactly 255 characters, then joining answers 201', async () => {
      await app.api
        .post(`/v1/chats/${chatId}/users`)
        .set(alice.auth)
        .send({ user_name: 'n'.repeat(255) })
        .expect(201);
    });
  });
});
