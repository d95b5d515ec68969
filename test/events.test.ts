import assert from 'node:assert/strict';
import type http from 'node:http';
import { startApp, type TestApp } from './support/app.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';
import { baseUrl, openSse, openWs, type Frame } from './support/events.js';
import { encodePosition, decodePosition } from '../src/modules/events/cursor.js';
import { eventually } from './support/spawn.js';

/** A listening app: the real HTTP server, as streaming clients need one. */
async function listeningApp(
  env: Record<string, string> = {},
): Promise<{ app: TestApp; url: string; server: http.Server }> {
  const app = await startApp({ PORT: '0', HOST: '127.0.0.1', EVENTS_HEARTBEAT_MS: '200', ...env });
  const server = await app.service.listen();
  return { app, url: baseUrl(server), server };
}

interface Member {
  user: User;
  memberId: string;
}

async function chatWith(app: TestApp, ...users: User[]): Promise<{ chatId: string; members: Member[] }> {
  const chatId = await createChat(app.api, users[0]!);
  const members: Member[] = [];
  for (const user of users) members.push({ user, memberId: await join(app.api, user, chatId) });
  return { chatId, members };
}

const messages = (frames: Frame[]) => frames.filter((frame) => frame.type === 'message');
/** Every frame but the ephemeral ones (presence, typing), which are never replayed. */
const stored = (frames: Frame[]) =>
  frames.filter((frame) => frame.type !== 'presence' && frame.type !== 'typing');

describe('real-time events', () => {
  let app: TestApp;
  let url: string;

  before(async () => {
    ({ app, url } = await listeningApp());
  });

  after(async () => {
    await app.close();
  });

  describe('GET /v1/events as Server-Sent Events', () => {
    it('when another member posts, then the stream gets the message event with an id', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const stream = await openSse(`${url}/v1/events`, bob.auth);
      try {
        assert.equal(stream.status, 200);
        const messageId = await send(app.api, alice, chatId, members[0]!.memberId, 'hello bob');
        const [frame] = messages(await stream.until((frames) => messages(frames).length >= 1));
        assert.equal(frame!.data.message_id, messageId);
        assert.equal(frame!.data.chat_id, chatId);
        assert.equal(frame!.data.user_name, alice.userName);
        assert.ok(frame!.id);
        // The body ends with the connection (one plain write per batch of frames, no chunk framing).
        assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
        assert.equal(stream.headers['transfer-encoding'], undefined);
        assert.equal(stream.headers.connection, 'close');
      } finally {
        stream.close();
      }
    });

    it('when a chat is joined after the stream opened, then its events start with the join and never another chat of others', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice);
      const other = await chatWith(app, alice);
      const stream = await openSse(`${url}/v1/events`, bob.auth);
      try {
        await send(app.api, alice, chatId, members[0]!.memberId, 'before bob');
        await send(app.api, alice, other.chatId, other.members[0]!.memberId, 'elsewhere');
        const bobMember = await join(app.api, bob, chatId);
        await send(app.api, alice, chatId, members[0]!.memberId, 'after bob');
        await stream.until((frames) => messages(frames).length >= 1);
        assert.deepEqual(stream.texts(), ['after bob']);
        const [joined] = stream.of('member');
        assert.deepEqual(joined!.data, {
          chat_id: chatId,
          user_id: bobMember,
          user_name: bob.userName,
          action: 'joined',
        });
        assert.ok(stream.frames.every((frame) => frame.data.chat_id === chatId));
      } finally {
        stream.close();
      }
    });

    it('when the stream has answered, then a chat joined at once starts with the join, over SSE and WebSocket alike', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice);
      // Open means subscribed: the starting point is read before the headers or the handshake.
      const sse = await openSse(`${url}/v1/events`, bob.auth);
      const ws = await openWs(`${url.replace('http', 'ws')}/v1/ws`, bob.auth);
      try {
        const bobMember = await join(app.api, bob, chatId);
        await send(app.api, alice, chatId, members[0]!.memberId, 'right after');
        for (const stream of [sse, ws]) {
          await stream.until((frames) => messages(frames).length >= 1);
          assert.deepEqual(
            stored(stream.frames).map((frame) => frame.type),
            ['member', 'message'],
          );
          assert.equal(stream.of('member')[0]!.data.user_id, bobMember);
        }
      } finally {
        sse.close();
        ws.close();
      }
    });

    it('when the stream resumes with Last-Event-ID after 100 messages in 3 chats were missed, then it gets exactly those, once each, in order', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const chats = [
        await chatWith(app, alice, bob),
        await chatWith(app, alice, bob),
        await chatWith(app, alice, bob),
      ];
      const first = await openSse(`${url}/v1/events`, bob.auth);
      await send(app.api, alice, chats[0]!.chatId, chats[0]!.members[0]!.memberId, 'seen');
      await first.until((frames) => messages(frames).length >= 1);
      const lastId = first.lastId()!;
      first.close();
      const sent: Record<string, string[]> = {};
      for (let index = 0; index < 100; index++) {
        const chat = chats[index % 3]!;
        const text = `missed ${index}`;
        await send(app.api, alice, chat.chatId, chat.members[0]!.memberId, text);
        (sent[chat.chatId] ??= []).push(text);
      }
      const resumed = await openSse(`${url}/v1/events`, { ...bob.auth, 'Last-Event-ID': lastId });
      try {
        await resumed.until((frames) => messages(frames).length >= 100);
        await send(app.api, alice, chats[1]!.chatId, chats[1]!.members[0]!.memberId, 'live');
        await resumed.until((frames) => messages(frames).length >= 101);
        const got = messages(resumed.frames);
        for (const chat of chats) {
          assert.deepEqual(
            got
              .filter((frame) => frame.data.chat_id === chat.chatId && frame.data.text !== 'live')
              .map((f) => f.data.text),
            sent[chat.chatId],
          );
        }
        assert.equal(got[100]!.data.text, 'live');
        assert.equal(got.length, 101);
      } finally {
        resumed.close();
      }
    });

    it('when chats were quiet, then the id leaves them out and a resume still gets what they missed, and a chat joined since from its join', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const busy = await chatWith(app, alice, bob);
      const quiet = [await chatWith(app, alice, bob), await chatWith(app, alice, bob)];
      // Time passes for the quiet chats: their last events are an hour old.
      await app.service.db
        .knex('events')
        .whereIn(
          'chat_id',
          quiet.map((chat) => chat.chatId),
        )
        .update({ created_at: app.service.db.knex.raw("now() - interval '1 hour'") });
      const before = await app.api.get('/v1/events?wait=0').set(bob.auth).expect(200);
      const position = decodePosition(before.body.last_event_id as string);
      assert.deepEqual([...position.chats.keys()], [busy.chatId]);
      const later = await chatWith(app, alice);
      await send(app.api, alice, later.chatId, later.members[0]!.memberId, 'before bob joined');
      const sent: string[] = [];
      for (const [index, chat] of [busy, ...quiet, busy, ...quiet].entries()) {
        const text = `missed ${index}`;
        await send(app.api, alice, chat.chatId, chat.members[0]!.memberId, text);
        sent.push(text);
      }
      await join(app.api, bob, later.chatId);
      await send(app.api, alice, later.chatId, later.members[0]!.memberId, 'after bob joined');
      const resumed = await openSse(`${url}/v1/events`, {
        ...bob.auth,
        'Last-Event-ID': before.body.last_event_id as string,
      });
      try {
        await resumed.until((frames) => messages(frames).length >= sent.length + 1);
        // A moment for anything extra (a message replayed twice) to arrive.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const got = messages(resumed.frames);
        const chatOrder = (chatId: string) =>
          got.filter((frame) => frame.data.chat_id === chatId).map((frame) => frame.data.text);
        assert.deepEqual(chatOrder(busy.chatId), ['missed 0', 'missed 3']);
        assert.deepEqual(chatOrder(quiet[0]!.chatId), ['missed 1', 'missed 4']);
        assert.deepEqual(chatOrder(quiet[1]!.chatId), ['missed 2', 'missed 5']);
        assert.deepEqual(chatOrder(later.chatId), ['after bob joined']);
        assert.equal(got.length, sent.length + 1);
      } finally {
        resumed.close();
      }
    });

    it('when the resume id is older than the replay window, then the stream starts with reset', async () => {
      const bob = await registerAndLogin(app.api);
      const { chatId } = await chatWith(app, bob);
      const old = encodePosition({ at: Date.now() / 1000 - 73 * 3600, chats: new Map([[chatId, 0]]) });
      const stream = await openSse(`${url}/v1/events`, { ...bob.auth, 'Last-Event-ID': old });
      try {
        const [reset] = await stream.until((frames) => frames.length >= 1);
        assert.equal(reset!.type, 'reset');
        assert.equal(stream.of('member').length, 0, 'nothing older than the reset is replayed');
        assert.ok(decodePosition(reset!.id!).chats.has(chatId));
      } finally {
        stream.close();
      }
    });
  });

  describe('leaving, read marks and the members list', () => {
    it('when a member leaves through the route, then streams get the left event and the leaver nothing of the chat after it', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const bobStream = await openSse(`${url}/v1/events`, bob.auth);
      const aliceStream = await openSse(`${url}/v1/events`, alice.auth);
      try {
        await app.api.delete(`/v1/chats/${chatId}/users/${members[1]!.memberId}`).set(bob.auth).expect(204);
        await bobStream.until((frames) => frames.some((frame) => frame.data.action === 'left'));
        await send(app.api, alice, chatId, members[0]!.memberId, 'after bob left');
        await send(app.api, alice, chatId, members[0]!.memberId, 'still without bob');
        await aliceStream.until((frames) => messages(frames).length >= 2);
        assert.deepEqual(bobStream.texts(), []);
        const left = aliceStream.of('member').find((frame) => frame.data.action === 'left');
        assert.ok(left, 'alice saw bob leave');
        assert.equal(left.data.user_id, members[1]!.memberId);
        assert.ok(left.id, 'a left event is durable');
      } finally {
        bobStream.close();
        aliceStream.close();
      }
    });

    it('when a member joins again after leaving, then the event says joined with the same member id', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const aliceStream = await openSse(`${url}/v1/events`, alice.auth);
      try {
        await app.api.delete(`/v1/chats/${chatId}/users/${members[1]!.memberId}`).set(bob.auth).expect(204);
        assert.equal(await join(app.api, bob, chatId, 'Bob again'), members[1]!.memberId);
        await join(app.api, bob, chatId, 'Bob renamed');
        const actions = await aliceStream.until(
          (frames) => frames.filter((f) => f.type === 'member').length >= 3,
        );
        assert.deepEqual(
          actions.filter((frame) => frame.type === 'member').map((frame) => frame.data.action),
          ['left', 'joined', 'renamed'],
        );
      } finally {
        aliceStream.close();
      }
    });

    it('when a member marks a message read (route or WebSocket frame), then streams get the read event once', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const first = await send(app.api, alice, chatId, members[0]!.memberId, 'read me');
      const second = await send(app.api, alice, chatId, members[0]!.memberId, 'and me');
      const aliceStream = await openSse(`${url}/v1/events`, alice.auth);
      const bobWs = await openWs(`${url.replace('http', 'ws')}/v1/ws`, bob.auth);
      try {
        await app.api.post(`/v1/chats/${chatId}/read`).set(bob.auth).send({ message_id: first }).expect(200);
        // Not forward: no event.
        await app.api.post(`/v1/chats/${chatId}/read`).set(bob.auth).send({ message_id: first }).expect(200);
        bobWs.send({ type: 'read', chat_id: chatId, message_id: second });
        const reads = await aliceStream.until(
          (frames) => frames.filter((f) => f.type === 'read').length >= 2,
        );
        assert.deepEqual(
          reads.filter((frame) => frame.type === 'read').map((frame) => frame.data.read_up_to),
          [first, second],
        );
        const res = await app.api.get(`/v1/chats/${chatId}/users?limit=10`).set(alice.auth).expect(200);
        const bobRow = (res.body.users as { user_id: string; read_up_to: string }[]).find(
          (user) => user.user_id === members[1]!.memberId,
        );
        assert.equal(bobRow?.read_up_to, second);
      } finally {
        aliceStream.close();
        bobWs.close();
      }
    });

    it('when a member has a stream open, then the members list shows them online, and not once it closes', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const onlineOf = async () => {
        const res = await app.api.get(`/v1/chats/${chatId}/users?limit=10`).set(alice.auth).expect(200);
        return (res.body.users as { user_id: string; online: boolean }[]).find(
          (user) => user.user_id === members[1]!.memberId,
        )?.online;
      };
      assert.equal(await onlineOf(), false);
      const bobStream = await openSse(`${url}/v1/events`, bob.auth);
      try {
        assert.equal(await onlineOf(), true);
      } finally {
        bobStream.close();
      }
      await eventually(async () => (await onlineOf()) === false, 10_000);
    });
  });

  describe('GET /v1/events as long poll', () => {
    it('when polling from the last id, then the answer carries the message sent meanwhile and a new last_event_id', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      // Bob's own polls make him online: his presence event may reach him too (his own events reach his
      // other connections). Only the stored events are compared.
      const empty = await app.api.get('/v1/events?wait=0').set(bob.auth).expect(200);
      assert.deepEqual(stored(empty.body.events as Frame[]), []);
      const sending = (async () => {
        // The poll waits for an event: one arrives while it does.
        await new Promise((resolve) => setTimeout(resolve, 100));
        return send(app.api, alice, chatId, members[0]!.memberId, 'polled');
      })();
      let since = empty.body.last_event_id as string;
      let received: Frame[] = [];
      for (let poll = 0; poll < 5 && received.length === 0; poll += 1) {
        const answer = await app.api.get(`/v1/events?wait=30&since=${since}`).set(bob.auth).expect(200);
        received = stored(answer.body.events as Frame[]);
        since = answer.body.last_event_id as string;
      }
      await sending;
      assert.deepEqual(
        received.map((frame) => frame.data.text),
        ['polled'],
      );
      const again = await app.api.get(`/v1/events?wait=0&since=${since}`).set(bob.auth).expect(200);
      assert.deepEqual(stored(again.body.events as Frame[]), []);
    });

    it('when since is not a position, then 400 bad-cursor', async () => {
      const bob = await registerAndLogin(app.api);
      const res = await app.api.get('/v1/events?wait=0&since=nonsense!').set(bob.auth).expect(400);
      assert.equal(res.body.message, 'bad-cursor');
    });
  });

  describe('GET /v1/ws', () => {
    it('when another member posts and types, then the WebSocket gets both, and ping is answered', async () => {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const ws = await openWs(`${url}/v1/ws`, bob.auth);
      const aliceWs = await openWs(`${url}/v1/ws`, alice.auth);
      try {
        ws.send({ type: 'ping' });
        await ws.until((frames) => frames.some((frame) => frame.type === 'pong'));
        await send(app.api, alice, chatId, members[0]!.memberId, 'over ws');
        aliceWs.send({ type: 'typing', chat_id: chatId });
        await ws.until(
          (frames) => messages(frames).length >= 1 && frames.some((frame) => frame.type === 'typing'),
        );
        assert.deepEqual(ws.texts(), ['over ws']);
        const typing = ws.of('typing')[0]!;
        assert.deepEqual(typing.data, {
          chat_id: chatId,
          user_id: members[0]!.memberId,
          user_name: alice.userName,
        });
      } finally {
        ws.close();
        aliceWs.close();
      }
    });

    it('when the upgrade has no valid session, then it is refused with 401', async () => {
      await assert.rejects(openWs(`${url}/v1/ws`), (error: { status?: number }) => error.status === 401);
    });
  });

  describe('POST /v1/chats/{chat_id}/typing', () => {
    it('when a member types, then the other members see typing; a non-member gets 404', async () => {
      const [alice, bob, eve] = [
        await registerAndLogin(app.api),
        await registerAndLogin(app.api),
        await registerAndLogin(app.api),
      ];
      const { chatId } = await chatWith(app, alice, bob);
      const stream = await openSse(`${url}/v1/events`, bob.auth);
      try {
        await app.api.post(`/v1/chats/${chatId}/typing`).set(alice.auth).expect(204);
        const [typing] = await stream.until((frames) => frames.some((frame) => frame.type === 'typing'));
        assert.equal(stream.of('typing')[0]!.data.user_name, alice.userName);
        assert.ok(typing);
        await app.api.post(`/v1/chats/${chatId}/typing`).set(eve.auth).expect(404);
      } finally {
        stream.close();
      }
    });
  });

  describe('tickets', () => {
    it('when a ticket is used twice, then the second use is refused with 401; a session id in the URL is never accepted', async () => {
      const bob = await registerAndLogin(app.api);
      const { body } = await app.api.post('/v1/events/tickets').set(bob.auth).expect(201);
      assert.equal(typeof body.ticket, 'string');
      assert.ok(body.expires_in > 0);
      const first = await openSse(`${url}/v1/events?ticket=${body.ticket}`);
      first.close();
      assert.equal(first.status, 200);
      const second = await openSse(`${url}/v1/events?ticket=${body.ticket}`);
      assert.equal(second.status, 401);
      await app.api.get(`/v1/events?wait=0&ticket=${body.ticket}`).expect(401);
      for (const name of ['session_id', 'token', 'access_token']) {
        await app.api.get(`/v1/events?wait=0&${name}=${bob.token}`).expect(401);
      }
      await assert.rejects(
        openWs(`${url}/v1/ws?session_id=${bob.token}`),
        (error: { status?: number }) => error.status === 401,
      );
    });

    it('when a ticket opens a WebSocket, then it works once', async () => {
      const bob = await registerAndLogin(app.api);
      const { body } = await app.api.post('/v1/events/tickets').set(bob.auth).expect(201);
      const ws = await openWs(`${url}/v1/ws?ticket=${body.ticket}`);
      ws.close();
      await assert.rejects(
        openWs(`${url}/v1/ws?ticket=${body.ticket}`),
        (error: { status?: number }) => error.status === 401,
      );
    });
  });
});

describe('real-time events: limits and shutdown', () => {
  it('when a ticket is older than its time to live, then it is refused with 401', async () => {
    const { app } = await listeningApp({ EVENTS_TICKET_TTL: '1' });
    try {
      const bob = await registerAndLogin(app.api);
      const { body } = await app.api.post('/v1/events/tickets').set(bob.auth).expect(201);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await app.api.get(`/v1/events?wait=0&ticket=${body.ticket}`).expect(401);
    } finally {
      await app.close();
    }
  });

  it('when a user opens more streams than STREAMS_PER_USER, then 429; closing one frees a place', async () => {
    const { app, url } = await listeningApp({ STREAMS_PER_USER: '2' });
    try {
      const bob = await registerAndLogin(app.api);
      const one = await openSse(`${url}/v1/events`, bob.auth);
      const two = await openWs(`${url}/v1/ws`, bob.auth);
      const three = await openSse(`${url}/v1/events`, bob.auth);
      assert.equal(three.status, 429);
      await assert.rejects(
        openWs(`${url}/v1/ws`, bob.auth),
        (error: { status?: number }) => error.status === 429,
      );
      one.close();
      two.close();
      await one.until(() => one.closed);
    } finally {
      await app.close();
    }
  });

  it('when a reader stops reading, then its stream is closed once its buffer is full, a fast reader gets everything meanwhile, and the slow one resumes by id', async function () {
    this.timeout(180_000);
    const { app, url } = await listeningApp({ EVENTS_MAX_BUFFERED_BYTES: '1048576' });
    try {
      const [alice, fast, slow] = [
        await registerAndLogin(app.api),
        await registerAndLogin(app.api),
        await registerAndLogin(app.api),
      ];
      const { chatId, members } = await chatWith(app, alice, fast, slow);
      const fastStream = await openSse(`${url}/v1/events`, fast.auth);
      const slowStream = await openSse(`${url}/v1/events`, slow.auth);
      // 40 kB frames: the sockets' kernel buffers (a few MB on loopback) fill after about a hundred.
      const text = '\u{1F600}'.repeat(9_990);
      await send(app.api, alice, chatId, members[0]!.memberId, `${text} first`);
      await slowStream.until((frames) => messages(frames).length >= 1);
      const resumeFrom = slowStream.lastId()!;
      slowStream.pause();
      const count = 250;
      for (let index = 0; index < count; index++) {
        await send(app.api, alice, chatId, members[0]!.memberId, `${text} ${index}`);
      }
      await fastStream.until((frames) => messages(frames).length >= count + 1, 60_000);
      const metrics = await app.api.get('/metrics').expect(200);
      assert.match(metrics.text, /messenger_event_stream_slow_disconnects_total 1\b/);
      // Counted per stream and event: the fast reader's alone are count + 1.
      const sent = Number(/^messenger_events_sent_total\{type="message"\} (\d+)$/m.exec(metrics.text)?.[1]);
      assert.ok(sent >= count + 1, `messenger_events_sent_total{type="message"} is ${sent}`);
      slowStream.close();

      const resumed = await openSse(`${url}/v1/events`, { ...slow.auth, 'Last-Event-ID': resumeFrom });
      try {
        await resumed.until((frames) => messages(frames).length >= count, 60_000);
        assert.deepEqual(
          resumed.texts().map((t) => t.slice(text.length + 1)),
          Array.from({ length: count }, (_, index) => String(index)),
        );
      } finally {
        resumed.close();
        fastStream.close();
      }
    } finally {
      await app.close();
    }
  });

  it('when a member opens a first stream and closes the last, then the others see presence online then offline, and /metrics counts the streams', async () => {
    const { app, url } = await listeningApp({ PRESENCE_DEBOUNCE_MS: '0' });
    try {
      const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
      const { chatId, members } = await chatWith(app, alice, bob);
      const watcher = await openSse(`${url}/v1/events`, alice.auth);
      const first = await openWs(`${url}/v1/ws`, bob.auth);
      const second = await openSse(`${url}/v1/events`, bob.auth);
      const presence = () =>
        watcher.of('presence').filter((frame) => frame.data.user_id === members[1]!.memberId);
      await watcher.until(() => presence().length >= 1, 15_000, 'presence online');
      const metrics = await app.api.get('/metrics').expect(200);
      assert.match(metrics.text, /messenger_event_streams_open\{transport="sse"\} 2\b/);
      assert.match(metrics.text, /messenger_event_streams_open\{transport="ws"\} 1\b/);
      first.close();
      second.close();
      await watcher.until(() => presence().length >= 2, 15_000, 'presence offline');
      assert.deepEqual(
        presence().map((frame) => frame.data),
        [
          { chat_id: chatId, user_id: members[1]!.memberId, online: true },
          { chat_id: chatId, user_id: members[1]!.memberId, online: false },
        ],
      );
      watcher.close();
    } finally {
      await app.close();
    }
  });

  it('when a chat has more members than PRESENCE_MAX_MEMBERS, then presence changes are not sent there, but the members list still shows who is online', async () => {
    const { app, url } = await listeningApp({ PRESENCE_DEBOUNCE_MS: '0', PRESENCE_MAX_MEMBERS: '2' });
    try {
      const [alice, bob, carol] = [
        await registerAndLogin(app.api),
        await registerAndLogin(app.api),
        await registerAndLogin(app.api),
      ];
      const small = await chatWith(app, alice, bob);
      const big = await chatWith(app, alice, bob, carol);
      const watcher = await openSse(`${url}/v1/events`, alice.auth);
      const bobStream = await openSse(`${url}/v1/events`, bob.auth);
      try {
        const bobs = () =>
          watcher.of('presence').filter((frame) => frame.data.user_id === small.members[1]!.memberId);
        await watcher.until(() => bobs().length >= 1, 15_000, 'presence in the small chat');
        // Published together with any presence of the big chat: a message sent after it comes after it.
        await send(app.api, carol, big.chatId, big.members[2]!.memberId, 'after bob came online');
        await watcher.until((frames) => messages(frames).length >= 1, 15_000, 'the message');
        assert.deepEqual(
          bobs().map((frame) => frame.data),
          [{ chat_id: small.chatId, user_id: small.members[1]!.memberId, online: true }],
        );
        // Nobody's presence (Alice's own, Bob's) reaches the big chat.
        // (A message of its own: without one, assert.ok reads the source to describe the expression.)
        assert.deepEqual(
          watcher.of('presence').filter((frame) => frame.data.chat_id !== small.chatId),
          [],
          'a presence event reached the big chat',
        );
        const res = await app.api.get(`/v1/chats/${big.chatId}/users?limit=10`).set(alice.auth).expect(200);
        const bobRow = (res.body.users as { user_id: string; online: boolean }[]).find(
          (user) => user.user_id === big.members[1]!.memberId,
        );
        assert.equal(bobRow?.online, true);
      } finally {
        watcher.close();
        bobStream.close();
      }
    } finally {
      await app.close();
    }
  });

  it('when the service closes, then SSE streams get a retry hint and WebSockets close with 1001, promptly', async () => {
    const { app, url } = await listeningApp({ SHUTDOWN_TIMEOUT_MS: '60000' });
    const bob = await registerAndLogin(app.api);
    const sse = await openSse(`${url}/v1/events`, bob.auth);
    const ws = await openWs(`${url}/v1/ws`, bob.auth);
    const started = Date.now();
    await app.close();
    await sse.until(() => sse.closed, 10_000, 'the SSE stream to close');
    await ws.until(() => ws.closed, 10_000, 'the WebSocket to close');
    // One `retry:` when the stream opened, one more as the server shuts down.
    assert.equal(sse.closeInfo.retries, 2);
    assert.equal(ws.closeInfo.code, 1001);
    // Far below the 60 s the server would otherwise wait for open connections.
    assert.ok(Date.now() - started < 30_000);
  });
});
