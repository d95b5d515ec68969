import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { appWith, sharedApp, type Api, type TestApp } from './support/app.js';
import { badParameters, createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';

interface MyChat {
  chat_id: string;
  chat_name: string;
  user_id: string;
  user_name: string;
  unread: number;
  last_message: { text: string; message_id: string; user_id: string; user_name: string } | null;
  last_activity_at: string;
}
interface MyChatsPage {
  chats: MyChat[];
  next?: { iterator: string };
}

async function myChats(api: Api, user: User, query = 'limit=100'): Promise<MyChatsPage> {
  return (await api.get(`/v1/chats?${query}`).set(user.auth).expect(200)).body as MyChatsPage;
}

async function markRead(api: Api, user: User, chatId: string, messageId: string): Promise<number> {
  const res = await api
    .post(`/v1/chats/${chatId}/read`)
    .set(user.auth)
    .send({ message_id: messageId })
    .expect(200);
  return res.body.unread as number;
}

/** Follows `next` to the end; returns the chat ids in the order shown. */
async function walk(api: Api, user: User, limit: number, between?: (page: number) => Promise<void>) {
  const seen: string[] = [];
  for (let from: string | undefined, page = 0; ; page++) {
    const query = `limit=${limit}${from ? `&from=${encodeURIComponent(from)}` : ''}`;
    const body = await myChats(api, user, query);
    seen.push(...body.chats.map((chat) => chat.chat_id));
    if (!body.next) return seen;
    from = body.next.iterator;
    await between?.(page);
    assert.ok(page < 100, 'paging does not end');
  }
}

describe('my chats and read marks', () => {
  let app: TestApp;
  let alice: User;
  let bob: User;

  before(async () => {
    app = await sharedApp();
  });
  beforeEach(async () => {
    [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
  });

  describe('GET /v1/chats', () => {
    it('when a user is in chats, then they are listed newest activity first with membership, unread and last message', async () => {
      // Arrange
      const quiet = await createChat(app.api, alice, 'quiet');
      const aliceQuiet = await join(app.api, alice, quiet, 'Alice Q');
      const busy = await createChat(app.api, alice, 'busy');
      const aliceBusy = await join(app.api, alice, busy, 'Alice B');
      const bobBusy = await join(app.api, bob, busy, 'Bob');
      await send(app.api, alice, busy, aliceBusy, 'mine');
      await send(app.api, bob, busy, bobBusy, 'first from Bob');
      const lastId = await send(app.api, bob, busy, bobBusy, 'second from Bob');
      await createChat(app.api, alice, 'not joined');

      // Act
      const body = await myChats(app.api, alice);

      // Assert
      assert.deepEqual(
        body.chats.map((c) => [c.chat_id, c.chat_name, c.user_id, c.user_name, c.unread]),
        [
          [busy, 'busy', aliceBusy, 'Alice B', 2],
          [quiet, 'quiet', aliceQuiet, 'Alice Q', 0],
        ],
      );
      assert.equal(body.next, undefined);
      const [first, second] = body.chats;
      assert.deepEqual(
        { ...first!.last_message, created_at: undefined },
        {
          text: 'second from Bob',
          message_id: lastId,
          user_id: bobBusy,
          user_name: 'Bob',
          created_at: undefined,
        },
      );
      assert.equal(second!.last_message, null);
      assert.ok(Date.parse(first!.last_activity_at) >= Date.parse(second!.last_activity_at));
    });

    it('when a chat gets a new message, then it moves to the top', async () => {
      const chats: string[] = [];
      const members: string[] = [];
      for (let i = 0; i < 3; i++) {
        chats.push(await createChat(app.api, alice));
        members.push(await join(app.api, alice, chats[i]!));
      }
      assert.deepEqual(
        (await myChats(app.api, alice)).chats.map((c) => c.chat_id),
        [...chats].reverse(),
      );

      await send(app.api, alice, chats[0]!, members[0]!, 'bump');

      assert.deepEqual(
        (await myChats(app.api, alice)).chats.map((c) => c.chat_id),
        [chats[0], chats[2], chats[1]],
      );
    });

    it('when the list is paged while new messages reorder it, then no chat appears twice', async () => {
      // Arrange: 7 chats, read 2 at a time; between pages a chat already shown and one not yet shown
      // both get a new message and move to the top.
      const chats: { chatId: string; memberId: string }[] = [];
      for (let i = 0; i < 7; i++) {
        const chatId = await createChat(app.api, alice);
        chats.push({ chatId, memberId: await join(app.api, alice, chatId) });
      }
      const shown: string[] = [];

      // Act
      const seen = await walk(app.api, alice, 2, async () => {
        shown.splice(0, shown.length, ...(await myChats(app.api, alice)).chats.map((c) => c.chat_id));
        const bumped = [chats.find((c) => c.chatId === shown[0])!, chats[0]!];
        for (const chat of bumped) await send(app.api, alice, chat.chatId, chat.memberId, 'bump');
      });

      // Assert
      assert.equal(new Set(seen).size, seen.length, `a chat was shown twice: ${seen.join(', ')}`);
      for (const id of seen) assert.ok(chats.some((c) => c.chatId === id));
    });

    it('when paged with a limit, then every chat is shown once in activity order', async () => {
      const chats: string[] = [];
      for (let i = 0; i < 5; i++) {
        chats.push(await createChat(app.api, alice));
        await join(app.api, alice, chats[i]!);
      }
      assert.deepEqual(await walk(app.api, alice, 2), [...chats].reverse());
    });

    it('when there is no session, then it answers 401 auth-failed', async () => {
      await app.api.get('/v1/chats?limit=10').expect(401, { message: 'auth-failed' });
    });

    it('when limit or from is unusable, then it answers 400', async () => {
      for (const limit of ['0', '101', 'x', '']) {
        await app.api
          .get(`/v1/chats?limit=${limit}`)
          .set(alice.auth)
          .expect(400)
          .expect(badParameters(/limit/));
      }
      const wrongKind = Buffer.from('h1:5').toString('base64url');
      for (const from of [
        'garbage!',
        randomUUID(),
        wrongKind,
        Buffer.from('c1:2026|x').toString('base64url'),
      ]) {
        await app.api
          .get(`/v1/chats?limit=5&from=${from}`)
          .set(alice.auth)
          .expect(400, { message: 'bad-cursor' });
      }
    });
  });

  describe('POST /v1/chats/{chat_id}/read', () => {
    let chatId: string;
    let aliceMember: string;
    let bobMember: string;
    let ids: string[];

    beforeEach(async () => {
      chatId = await createChat(app.api, alice);
      aliceMember = await join(app.api, alice, chatId);
      bobMember = await join(app.api, bob, chatId);
      ids = [];
      for (const [user, member, text] of [
        [bob, bobMember, 'b1'],
        [alice, aliceMember, 'a1'],
        [bob, bobMember, 'b2'],
        [bob, bobMember, 'b3'],
        [alice, aliceMember, 'a2'],
        [bob, bobMember, 'b4'],
      ] as const) {
        ids.push(await send(app.api, user, chatId, member, text));
      }
    });

    const unreadIn = async (user: User) =>
      (await myChats(app.api, user)).chats.find((c) => c.chat_id === chatId)!.unread;

    it('when nothing was marked, then unread counts every message not sent by the member', async () => {
      assert.equal(await unreadIn(alice), 4);
      assert.equal(await unreadIn(bob), 2);
    });

    it('when a message is marked read, then unread counts the others after it, here and in the chat list', async () => {
      assert.equal(await markRead(app.api, alice, chatId, ids[2]!), 2);
      assert.equal(await unreadIn(alice), 2);
      assert.equal(await markRead(app.api, alice, chatId, ids[5]!), 0);
      assert.equal(await unreadIn(alice), 0);
      // Bob's count is his own.
      assert.equal(await unreadIn(bob), 2);
    });

    it('when more messages arrive after a mark, then only others count', async () => {
      await markRead(app.api, alice, chatId, ids[5]!);
      await send(app.api, alice, chatId, aliceMember, 'a3');
      await send(app.api, bob, chatId, bobMember, 'b5');
      await send(app.api, bob, chatId, bobMember, 'b6');
      assert.equal(await unreadIn(alice), 2);
      // Bob never marked: every message of Alice's counts.
      assert.equal(await unreadIn(bob), 3);
    });

    it('when an older message is marked, then the position never moves back', async () => {
      assert.equal(await markRead(app.api, alice, chatId, ids[3]!), 1);
      assert.equal(await markRead(app.api, alice, chatId, ids[0]!), 1);
      assert.equal(await unreadIn(alice), 1);
      const members = await app.api.get(`/v1/chats/${chatId}/users?limit=10`).set(alice.auth).expect(200);
      const mine = (members.body.users as { user_id: string; read_up_to: string | null }[]).find(
        (u) => u.user_id === aliceMember,
      );
      assert.equal(mine!.read_up_to, ids[3]);
    });

    it('when the message is of another chat, unknown or malformed, then it answers 404 message-not-found', async () => {
      const other = await createChat(app.api, alice);
      const otherMember = await join(app.api, alice, other);
      const foreign = await send(app.api, alice, other, otherMember, 'elsewhere');
      for (const messageId of [foreign, randomUUID(), 'not-a-uuid']) {
        await app.api
          .post(`/v1/chats/${chatId}/read`)
          .set(alice.auth)
          .send({ message_id: messageId })
          .expect(404, { message: 'message-not-found' });
      }
      assert.equal(await unreadIn(alice), 4);
    });

    it('when the caller is not a member, then it answers 404 chat-not-found', async () => {
      const stranger = await registerAndLogin(app.api);
      for (const chat of [chatId, randomUUID(), 'random_chat']) {
        await app.api
          .post(`/v1/chats/${chat}/read`)
          .set(stranger.auth)
          .send({ message_id: ids[0] })
          .expect(404, { message: 'chat-not-found' });
      }
    });

    it('when there is no session or no message_id, then it answers 401 or 400', async () => {
      await app.api
        .post(`/v1/chats/${chatId}/read`)
        .send({ message_id: ids[0] })
        .expect(401, { message: 'auth-failed' });
      await app.api
        .post(`/v1/chats/${chatId}/read`)
        .set(alice.auth)
        .send({})
        .expect(400)
        .expect(badParameters(/message_id/));
    });
  });

  describe('with AUTH_DISABLED=true', () => {
    const open = appWith({ AUTH_DISABLED: 'true' });

    it('when there is no session, then my chats and read marks answer 401 auth-failed while the rest works', async () => {
      const chat = await open().api.post('/v1/chats').send({ chat_name: 'open' }).expect(201);
      const chatId = chat.body.chat_id as string;
      const member = (
        await open().api.post(`/v1/chats/${chatId}/users`).send({ user_name: 'Anon' }).expect(201)
      ).body.user_id as string;
      const sent = await open()
        .api.post(`/v1/chats/${chatId}/messages?user_id=${member}`)
        .send({ message: 'hi' });
      await open().api.get('/v1/chats?limit=10').expect(401, { message: 'auth-failed' });
      await open()
        .api.post(`/v1/chats/${chatId}/read`)
        .send({ message_id: sent.body.message_id })
        .expect(401, { message: 'auth-failed' });
      const members = await open().api.get(`/v1/chats/${chatId}/users?limit=10`).expect(200);
      assert.deepEqual(members.body.users, [
        { user_id: member, user_name: 'Anon', read_up_to: null, online: false },
      ]);
    });

    it('when a session is given, then my chats lists that user’s chats', async () => {
      const carol = await registerAndLogin(open().api);
      assert.deepEqual((await myChats(open().api, carol)).chats, []);
    });
  });
});
