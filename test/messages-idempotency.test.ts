import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
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

  // Postgres: another connection holds the chat row, so sends wait where a real race happens.
  if (profile.services) {
    describe('on Postgres, with the chat row held by another transaction', () => {
      let locker: Knex;
      before(() => {
        locker = knex({ client: 'pg', connection: profile.env.DATABASE_URL, pool: { min: 0, max: 2 } });
      });
      after(async () => {
        await locker.destroy();
      });

      const waitingSends = async () => {
        const { rows } = await locker.raw<{ rows: { n: number }[] }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO messages%' AND datname = current_database()`,
        );
        return rows[0]!.n;
      };

      it('when two retries with one key are both inside the insert at once, then one row is stored and both get its id', async () => {
        const key = randomUUID();
        const trx = await locker.transaction();
        await trx.raw('SELECT id FROM chats WHERE id = ? FOR UPDATE', [m.chatId]);
        const racing = Promise.all([post(app.api, m, 'raced', key), post(app.api, m, 'raced', key)]);
        await eventually(async () => (await waitingSends()) >= 2, 10_000);
        await trx.commit();
        const answers = await racing;
        for (const res of answers) assert.equal(res.status, 201);
        assert.equal(answers[0].body.message_id, answers[1].body.message_id);
        assert.deepEqual(
          (await history(app.api, m)).map((message) => message.message_id),
          [answers[0].body.message_id],
        );
      });

      it('when the first attempt answered 503 but its insert completed, then the retry gets that message', async () => {
        const impatient = await startApp({ DB_QUERY_TIMEOUT_MS: '300' });
        try {
          const key = randomUUID();
          const trx = await locker.transaction();
          await trx.raw('SELECT id FROM chats WHERE id = ? FOR UPDATE', [m.chatId]);
          await post(impatient.api, m, 'slow', key).expect(503, { message: 'service-unavailable' });
          await trx.commit();
          // The abandoned statement completes on the server once the row is free (asked directly:
          // no cached page knows of it, as no instance answered for it).
          await eventually(async () => {
            const { rows } = await locker.raw<{ rows: unknown[] }>(
              'SELECT 1 FROM messages WHERE chat_id = ?',
              [m.chatId],
            );
            return rows.length === 1;
          }, 10_000);

          const retry = await post(impatient.api, m, 'slow', key).expect(201);

          assert.deepEqual(
            (await history(app.api, m)).map((message) => [message.text, message.message_id]),
            [['slow', retry.body.message_id]],
          );
        } finally {
          await impatient.close();
        }
      });
    });
  }
});
