import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { appWith, sharedApp, type Api, type TestApp, twoApps } from './support/app.js';
import { createChat, join, registerAndLogin, send, type User, memberOfNewChat } from './support/fixtures.js';

import { profile } from './support/profile.js';

import { createTask, finished } from './support/search-helpers.js';

interface ChatMember {
  user_id: string;
  user_name: string;
  read_up_to: string | null;
  online: boolean;
}

async function members(api: Api, user: User, chatId: string, query = 'limit=100') {
  const res = await api.get(`/v1/chats/${chatId}/users?${query}`).set(user.auth).expect(200);
  return res.body as { users: ChatMember[]; next?: { iterator: string } };
}

const leave = (api: Api, user: User, chatId: string, memberId: string) =>
  api.delete(`/v1/chats/${chatId}/users/${memberId}`).set(user.auth);

describe('members and leaving', () => {
  let app: TestApp;
  let alice: User;
  let bob: User;
  let chatId: string;
  let aliceMember: string;
  let bobMember: string;

  before(async () => {
    app = await sharedApp();
  });
  beforeEach(async () => {
    [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
    chatId = await createChat(app.api, alice);
    aliceMember = await join(app.api, alice, chatId, 'Alice');
    bobMember = await join(app.api, bob, chatId, 'Bob');
  });

  describe('GET /v1/chats/{chat_id}/users', () => {
    it('when a member lists the chat, then every member is there with name, read position and online false', async () => {
      const sent = await send(app.api, bob, chatId, bobMember, 'hello');
      await app.api.post(`/v1/chats/${chatId}/read`).set(bob.auth).send({ message_id: sent }).expect(200);

      const body = await members(app.api, alice, chatId);

      const expected = [
        { user_id: aliceMember, user_name: 'Alice', read_up_to: null, online: false },
        { user_id: bobMember, user_name: 'Bob', read_up_to: sent, online: false },
      ].sort((a, b) => a.user_id.localeCompare(b.user_id));
      assert.deepEqual(body, { users: expected });
    });

    it('when paged, then every member is shown once', async () => {
      const others: string[] = [];
      for (let i = 0; i < 3; i++) others.push(await join(app.api, await registerAndLogin(app.api), chatId));
      const seen: string[] = [];
      for (let from: string | undefined; ;) {
        const body = await members(app.api, alice, chatId, `limit=2${from ? `&from=${from}` : ''}`);
        assert.ok(body.users.length <= 2);
        seen.push(...body.users.map((u) => u.user_id));
        if (!body.next) break;
        from = encodeURIComponent(body.next.iterator);
      }
      assert.deepEqual(seen, [aliceMember, bobMember, ...others].sort());
    });

    it('when the caller is not a member or the chat does not exist, then it answers 404 chat-not-found', async () => {
      const stranger = await registerAndLogin(app.api);
      for (const chat of [chatId, randomUUID(), 'random_chat']) {
        await app.api
          .get(`/v1/chats/${chat}/users?limit=10`)
          .set(stranger.auth)
          .expect(404, { message: 'chat-not-found' });
      }
      await app.api.get(`/v1/chats/${chatId}/users?limit=10`).expect(401, { message: 'auth-failed' });
      await app.api
        .get(`/v1/chats/${chatId}/users?limit=10&from=nope`)
        .set(alice.auth)
        .expect(400, { message: 'bad-cursor' });
    });
  });

  describe('DELETE /v1/chats/{chat_id}/users/{user_id}', () => {
    it('when a member leaves, then history, posting, members and the chat list answer as for a stranger, and old messages stay', async () => {
      // Arrange: the membership is in the cache from earlier reads.
      await send(app.api, bob, chatId, bobMember, 'before leaving');
      await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(bob.auth).expect(200);
      await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(bob.auth).expect(200);

      // Act
      const res = await leave(app.api, bob, chatId, bobMember).expect(204);

      // Assert
      assert.equal(res.text, '');
      await app.api
        .get(`/v1/chats/${chatId}/messages?limit=10`)
        .set(bob.auth)
        .expect(404, { message: 'chat-not-found' });
      await app.api
        .post(`/v1/chats/${chatId}/messages?user_id=${bobMember}`)
        .set(bob.auth)
        .send({ message: 'after leaving' })
        .expect(404, { message: 'chat-not-found' });
      await app.api
        .get(`/v1/chats/${chatId}/users?limit=10`)
        .set(bob.auth)
        .expect(404, { message: 'chat-not-found' });
      const list = await app.api.get('/v1/chats?limit=10').set(bob.auth).expect(200);
      assert.deepEqual(list.body.chats, []);
      assert.deepEqual(
        (await members(app.api, alice, chatId)).users.map((u) => u.user_id),
        [aliceMember],
      );
      const history = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(alice.auth).expect(200);
      assert.deepEqual(
        history.body.messages.map((m: { text: string; user_name: string }) => [m.text, m.user_name]),
        [['before leaving', 'Bob']],
      );
    });

    it('when a member leaves, then their search no longer covers the chat', async () => {
      await send(app.api, bob, chatId, bobMember, 'parting words about zeppelins');
      const before = await createTask(app, bob, { message: 'zeppelins' });
      assert.equal((await finished(app, bob, before)).total, 1);

      await leave(app.api, bob, chatId, bobMember).expect(204);

      const after = await createTask(app, bob, { message: 'zeppelins' });
      assert.deepEqual(await finished(app, bob, after), { status: 'SUCCESS', total: 0 });
      await app.api
        .post('/v1/chats/search')
        .set(bob.auth)
        .send({ message: 'zeppelins', chat_id: chatId })
        .expect(404, { message: 'chat-not-found' });
    });

    it('when a member joins again, then the same member id comes back with its read position', async () => {
      const sent = await send(app.api, alice, chatId, aliceMember, 'read me');
      await app.api.post(`/v1/chats/${chatId}/read`).set(bob.auth).send({ message_id: sent }).expect(200);
      await leave(app.api, bob, chatId, bobMember).expect(204);

      const again = await join(app.api, bob, chatId, 'Bob again');

      assert.equal(again, bobMember);
      await send(app.api, bob, chatId, bobMember, 'back');
      const mine = (await members(app.api, bob, chatId)).users.find((u) => u.user_id === bobMember);
      assert.deepEqual(mine, { user_id: bobMember, user_name: 'Bob again', read_up_to: sent, online: false });
    });

    it('when someone else’s membership, an unknown or a malformed id is named, then it answers 404 user-not-found', async () => {
      for (const memberId of [aliceMember, randomUUID(), 'random_user']) {
        await leave(app.api, bob, chatId, memberId).expect(404, { message: 'user-not-found' });
      }
      // Alice is still there.
      await app.api.get(`/v1/chats/${chatId}/messages?limit=1`).set(alice.auth).expect(200);
    });

    it('when the chat is not the caller’s, or they already left, then it answers 404 chat-not-found', async () => {
      const stranger = await registerAndLogin(app.api);
      await leave(app.api, stranger, chatId, bobMember).expect(404, { message: 'chat-not-found' });
      await leave(app.api, bob, chatId, bobMember).expect(204);
      await leave(app.api, bob, chatId, bobMember).expect(404, { message: 'chat-not-found' });
      await app.api.delete(`/v1/chats/${chatId}/users/${bobMember}`).expect(401, { message: 'auth-failed' });
    });
  });

  describe('with AUTH_DISABLED=true', () => {
    const open = appWith({ AUTH_DISABLED: 'true' });

    it('when an anonymous member leaves, then it can no longer post and is no longer listed', async () => {
      const chat = (await open().api.post('/v1/chats').send({ chat_name: 'open' }).expect(201)).body
        .chat_id as string;
      const join = async (name: string) =>
        (await open().api.post(`/v1/chats/${chat}/users`).send({ user_name: name }).expect(201)).body
          .user_id as string;
      const [ann, ben] = [await join('Ann'), await join('Ben')];

      await open().api.delete(`/v1/chats/${chat}/users/${ann}`).expect(204);

      await open()
        .api.post(`/v1/chats/${chat}/messages?user_id=${ann}`)
        .send({ message: 'still here?' })
        .expect(404, { message: 'user-not-found' });
      const list = await open().api.get(`/v1/chats/${chat}/users?limit=10`).expect(200);
      assert.deepEqual(
        list.body.users.map((u: ChatMember) => u.user_id),
        [ben],
      );
    });
  });

  if (profile.services) {
    describe('with two instances on the same Postgres and Redis', () => {
      const { a, b } = twoApps();

      it('when a member leaves on A, then B, which had the membership cached, refuses them at once', async () => {
        const { user: owner, chatId: chat, memberId: ownerMember } = await memberOfNewChat(a().api);
        const guest = await registerAndLogin(a().api);
        const guestMember = await join(a().api, guest, chat);
        await send(a().api, owner, chat, ownerMember, 'hello');
        for (let i = 0; i < 2; i++) {
          await b().api.get(`/v1/chats/${chat}/messages?limit=10`).set(guest.auth).expect(200);
        }

        await leave(a().api, guest, chat, guestMember).expect(204);

        await b()
          .api.get(`/v1/chats/${chat}/messages?limit=10`)
          .set(guest.auth)
          .expect(404, { message: 'chat-not-found' });
        await b()
          .api.get(`/v1/chats/${chat}/users?limit=10`)
          .set(guest.auth)
          .expect(404, { message: 'chat-not-found' });
        await b()
          .api.post(`/v1/chats/${chat}/messages?user_id=${guestMember}`)
          .set(guest.auth)
          .send({ message: 'through B' })
          .expect(404, { message: 'chat-not-found' });
        // Joining again (on B) restores access on A too.
        assert.equal(await join(b().api, guest, chat), guestMember);
        await a().api.get(`/v1/chats/${chat}/messages?limit=10`).set(guest.auth).expect(200);
      });
    });
  }
});
