import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import knex, { type Knex } from 'knex';
import { sharedApp, startApp, type Api, type TestApp } from './support/app.js';
import { badParameters, createChat, join, registerAndLogin, type User } from './support/fixtures.js';
import { profile } from './support/profile.js';
import { eventually } from './support/spawn.js';
import type { MessagesModule } from '../src/modules/messages/index.js';

interface Member {
  user: User;
  chatId: string;
  memberId: string;
}

async function newMember(api: Api): Promise<Member> {
  const user = await registerAndLogin(api);
  const chatId = await createChat(api, user);
  return { user, chatId, memberId: await join(api, user, chatId) };
}

const post = (
  api: Api,
  m: Member,
  message: string,
  key?: string,
  chatId = m.chatId,
  memberId = m.memberId,
) => {
  const request = api.post(`/v1/chats/${chatId}/messages?user_id=${memberId}`).set(m.user.auth);
  return (key === undefined ? request : request.set('Idempotency-Key', key)).send({ message });
};

async function history(api: Api, m: Member): Promise<{ text: string; message_id: string }[]> {
  const res = await api.get(`/v1/chats/${m.chatId}/messages?limit=100`).set(m.user.auth).expect(200);
  return res.body.messages as { text: string; message_id: string }[];
}

describe('idempotent send', () => {
  let app: TestApp;
  let m: Member;

  before(async () => {
    app = await sharedApp();
  });
  beforeEach(async () => {
    m = await newMember(app.api);
  });

  it('when a send is retried with the same key, then it answers 201 with the same message_id and stores it once', async () => {
    const key = randomUUID();
    const first = await post(app.api, m, 'hello', key).expect(201);
    const retry = await post(app.api, m, 'hello', key).expect(201);
    assert.equal(retry.body.message_id, first.body.message_id);
    assert.deepEqual(
      (await history(app.api, m)).map((message) => [message.text, message.message_id]),
      [['hello', first.body.message_id]],
    );
  });

  it('when two sends with one key race, then both get the same message_id and one message is stored', async () => {
    const key = randomUUID();
    const answers = await Promise.all([post(app.api, m, 'once', key), post(app.api, m, 'once', key)]);
    for (const res of answers) assert.equal(res.status, 201);
    assert.equal(answers[0].body.message_id, answers[1].body.message_id);
    assert.deepEqual(
      (await history(app.api, m)).map((message) => message.message_id),
      [answers[0].body.message_id],
    );
  });

  it('when a key is reused with another text, chat or member, then it answers 422 idempotency-key-reused', async () => {
    const key = randomUUID();
    await post(app.api, m, 'original', key).expect(201);
    const otherChat = await createChat(app.api, m.user);
    const otherMember = await join(app.api, m.user, otherChat);
    await post(app.api, m, 'changed', key).expect(422, { message: 'idempotency-key-reused' });
    await post(app.api, m, 'original', key, otherChat, otherMember).expect(422, {
      message: 'idempotency-key-reused',
    });
    assert.deepEqual(
      (await history(app.api, m)).map((message) => message.text),
      ['original'],
    );
  });

  it('when another user sends with the same key, then it is their own key', async () => {
    const key = randomUUID();
    const other = await newMember(app.api);
    const mine = await post(app.api, m, 'same text', key).expect(201);
    const theirs = await post(app.api, other, 'same text', key).expect(201);
    assert.notEqual(theirs.body.message_id, mine.body.message_id);
  });

  it('when sends carry different keys or none, then each is a new message', async () => {
    await post(app.api, m, 'same').expect(201);
    await post(app.api, m, 'same').expect(201);
    await post(app.api, m, 'same', randomUUID()).expect(201);
    await post(app.api, m, 'same', randomUUID()).expect(201);
    assert.equal((await history(app.api, m)).length, 4);
  });

  it('when the key is empty, too long or not visible ASCII, then it answers 400 bad-parameters', async () => {
    for (const key of ['', 'k'.repeat(256), 'with space', 'clé']) {
      await post(app.api, m, 'x', key)
        .expect(400)
        .expect(badParameters(/Idempotency-Key/));
    }
    await post(app.api, m, 'x', 'k'.repeat(255)).expect(201);
    assert.equal((await history(app.api, m)).length, 1);
  });

  it('when the sender is not a member, then a key changes nothing: 404 as without one', async () => {
    const stranger = await newMember(app.api);
    await post(app.api, { ...stranger, chatId: m.chatId }, 'intruder', randomUUID()).expect(404, {
      message: 'chat-not-found',
    });
    await post(app.api, m, 'wrong member', randomUUID(), m.chatId, stranger.memberId).expect(404, {
      message: 'user-not-found',
    });
  });

  it('when a key is older than 24 h, then it no longer replays, and the periodic cleanup removes it', async () => {
    const key = randomUUID();
    const first = await post(app.api, m, 'yesterday', key).expect(201);
    const { knex: db } = app.service.db;
    await db.raw(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = ?`, [key]);

    const again = await post(app.api, m, 'yesterday', key).expect(201);

    assert.notEqual(again.body.message_id, first.body.message_id);
    assert.equal((await history(app.api, m)).length, 2);
    await db.raw(`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = ?`, [key]);
    const messages = app.service.modules.find((module) => module.name === 'messages') as MessagesModule;
    assert.ok((await messages.expireIdempotencyKeys()) >= 1);
    const { rows } = await db.raw<{ rows: unknown[] }>('SELECT 1 FROM idempotency_keys WHERE key = ?', [key]);
    assert.deepEqual(rows, []);
  });

  it('when authentication is off, then anonymous retries with one key replay too', async () => {
    const open = await startApp({ AUTH_DISABLED: 'true' });
    try {
      const chatId = (await open.api.post('/v1/chats').send({ chat_name: 'open' }).expect(201)).body.chat_id;
      const memberId = (await open.api.post(`/v1/chats/${chatId}/users`).send({ user_name: 'A' }).expect(201))
        .body.user_id;
      const key = randomUUID();
      const send = () =>
        open.api
          .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
          .set('Idempotency-Key', key)
          .send({ message: 'anon' })
          .expect(201);
      assert.equal((await send()).body.message_id, (await send()).body.message_id);
    } finally {
      await open.close();
    }
  });

  // Postgres: real races and lost answers need a server on the other side of a connection.
  if (profile.services) {
    describe('on Postgres', () => {
      let locker: Knex;
      let patient: TestApp;
      before(async () => {
        locker = knex({ client: 'pg', connection: profile.env.DATABASE_URL, pool: { min: 0, max: 2 } });
        // Sends wait on a held row here: a deadline far beyond the test's wait keeps them going.
        patient = await startApp({ DB_QUERY_TIMEOUT_MS: '30000' });
      });
      after(async () => {
        await patient.close();
        await locker.destroy();
      });

      const waitingSends = async () => {
        const { rows } = await locker.raw<{ rows: { n: number }[] }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO messages%' AND datname = current_database()`,
        );
        return rows[0]!.n;
      };
      const stored = async (chatId: string) =>
        (await locker.raw<{ rows: { id: string }[] }>('SELECT id FROM messages WHERE chat_id = ?', [chatId]))
          .rows;

      it('when two retries with one key are both inside the insert at once, then one row is stored and both get its id', async () => {
        // Another transaction holds the chat row until both sends wait for it.
        const key = randomUUID();
        const trx = await locker.transaction();
        await trx.raw('SELECT id FROM chats WHERE id = ? FOR UPDATE', [m.chatId]);
        const racing = Promise.all([post(patient.api, m, 'raced', key), post(patient.api, m, 'raced', key)]);
        await eventually(async () => (await waitingSends()) >= 2, 10_000);
        await trx.commit();
        const answers = await racing;
        for (const res of answers) assert.equal(res.status, 201);
        assert.equal(answers[0].body.message_id, answers[1].body.message_id);
        assert.deepEqual(
          (await stored(m.chatId)).map((row) => row.id),
          [answers[0].body.message_id],
        );
      });

      it('when the first attempt answered 503 but its insert was stored, then the retry gets that message', async () => {
        const target = new URL(profile.env.DATABASE_URL!);
        const proxy = new AnswerHoldingProxy({ host: target.hostname, port: Number(target.port || 5432) });
        const port = await proxy.start();
        const viaProxy = new URL(profile.env.DATABASE_URL!);
        viaProxy.hostname = '127.0.0.1';
        viaProxy.port = String(port);
        const impatient = await startApp({ DATABASE_URL: viaProxy.toString(), DB_QUERY_TIMEOUT_MS: '1000' });
        try {
          const key = randomUUID();
          // The session is read once, so the send's only statement is the insert.
          await impatient.api.get(`/v1/chats/${m.chatId}/messages?limit=1`).set(m.user.auth).expect(200);

          // The insert reaches the server and commits; its answer never reaches the API.
          proxy.holdAnswers();
          await post(impatient.api, m, 'lost answer', key).expect(503, { message: 'service-unavailable' });
          await eventually(async () => (await stored(m.chatId)).length === 1, 10_000);
          proxy.dropHeld();

          const retry = await post(impatient.api, m, 'lost answer', key).expect(201);

          assert.deepEqual(
            (await stored(m.chatId)).map((row) => row.id),
            [retry.body.message_id],
          );
          // The retry also made cached pages stale: the message shows everywhere.
          assert.deepEqual(
            (await history(app.api, m)).map((message) => [message.text, message.message_id]),
            [['lost answer', retry.body.message_id]],
          );
        } finally {
          await impatient.close();
          await proxy.close();
        }
      });
    });
  }
});

/**
 * A TCP proxy that can keep the server's answers from the client (what the client sends still
 * arrives): a statement runs and commits, and the client never hears of it.
 */
class AnswerHoldingProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private holding = false;

  constructor(private readonly target: { host: string; port: number }) {}

  start(): Promise<number> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      for (const socket of pair) socket.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!this.holding) client.write(chunk);
      });
    });
    return new Promise((resolve) => {
      this.server!.listen(0, '127.0.0.1', () => resolve((this.server!.address() as net.AddressInfo).port));
    });
  }

  /** From now on the server's answers are held back. */
  holdAnswers(): void {
    this.holding = true;
  }

  /** Closes the connections whose answers were held (their clients gave up on them) and lets answers through again. */
  dropHeld(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    this.holding = false;
  }

  async close(): Promise<void> {
    this.dropHeld();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
