import assert from 'node:assert/strict';
import type http from 'node:http';
import { startApp, type TestApp } from './support/app.js';
import { baseUrl, openSse, openWs, type Frame } from './support/events.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';
import { profile } from './support/profile.js';
import { TcpProxy } from './support/tcp-proxy.js';
import type { Knex } from '../src/infra/db.js';

async function listeningApp(
  env: Record<string, string> = {},
): Promise<{ app: TestApp; url: string; server: http.Server }> {
  const app = await startApp({ PORT: '0', HOST: '127.0.0.1', ...env }, { consumer: false });
  const server = await app.service.listen();
  return { app, url: baseUrl(server), server };
}

const messages = (frames: Frame[]) => frames.filter((frame) => frame.type === 'message');

async function backendPid(db: Knex): Promise<number> {
  const { rows } = await db.raw<{ rows: { pid: number }[] }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

/** Resolves once some backend waits for a lock `holder` holds (bounded by the test's timeout). */
async function blockedOn(db: Knex, holder: number): Promise<void> {
  for (;;) {
    const { rows } = await db.raw<{ rows: unknown[] }>(
      'SELECT pid FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))',
      [holder],
    );
    if (rows.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// Two API instances share Postgres and Redis: only the services profile has them.
(profile.services ? describe : describe.skip)('real-time events across instances', function () {
  this.timeout(60_000);
  let a: Awaited<ReturnType<typeof listeningApp>>;
  let b: Awaited<ReturnType<typeof listeningApp>>;
  let alice: User;
  let bob: User;
  let chatId: string;
  let aliceMember: string;

  before(async () => {
    a = await listeningApp();
    b = await listeningApp();
  });

  after(async () => {
    await a.app.close();
    await b.app.close();
  });

  beforeEach(async () => {
    alice = await registerAndLogin(a.app.api);
    bob = await registerAndLogin(a.app.api);
    chatId = await createChat(a.app.api, alice);
    aliceMember = await join(a.app.api, alice, chatId);
    await join(a.app.api, bob, chatId);
  });

  it('when a message is sent through instance A, then an SSE stream, a long poll and a WebSocket on instance B get it', async () => {
    const sse = await openSse(`${b.url}/v1/events`, bob.auth);
    const ws = await openWs(`${b.url}/v1/ws`, bob.auth);
    const start = await b.app.api.get('/v1/events?wait=0').set(bob.auth).expect(200);
    const poll = b.app.api.get(`/v1/events?wait=30&since=${start.body.last_event_id}`).set(bob.auth);
    try {
      const polled = poll.expect(200).then((res) => res.body as { events: Frame[] });
      const messageId = await send(a.app.api, alice, chatId, aliceMember, 'across');
      await sse.until((frames) => messages(frames).length >= 1);
      await ws.until((frames) => messages(frames).length >= 1);
      const answer = await polled;
      for (const frames of [sse.frames, ws.frames, answer.events]) {
        assert.deepEqual(
          messages(frames).map((frame) => frame.data.message_id),
          [messageId],
        );
      }
    } finally {
      sse.close();
      ws.close();
    }
  });

  it('when two chats commit out of order, then resuming from the later one still delivers the earlier one', async () => {
    const other = await createChat(a.app.api, alice);
    const otherMember = await join(a.app.api, alice, other);
    await join(a.app.api, bob, other);
    const knex = a.app.service.db.knex;
    const stream = await openSse(`${b.url}/v1/events`, bob.auth);
    const hold = await knex.transaction();
    let slow: Promise<string> | undefined;
    try {
      // Alice's post in the first chat takes its number, then waits for her member row.
      const holder = await backendPid(hold);
      await hold.raw('SELECT id FROM members WHERE id = ? FOR UPDATE', [aliceMember]);
      slow = send(a.app.api, alice, chatId, aliceMember, 'slow');
      await blockedOn(knex, holder);
      await send(a.app.api, alice, other, otherMember, 'fast');
      await stream.until((frames) => messages(frames).length >= 1);
      assert.deepEqual(stream.texts(), ['fast']);
      const lastId = stream.lastId()!;
      stream.close();

      await hold.commit();
      await slow;
      const resumed = await openSse(`${b.url}/v1/events`, { ...bob.auth, 'Last-Event-ID': lastId });
      try {
        await resumed.until((frames) => messages(frames).length >= 1);
        await send(a.app.api, alice, other, otherMember, 'marker');
        await resumed.until((frames) => messages(frames).length >= 2);
        assert.deepEqual(resumed.texts(), ['slow', 'marker']);
      } finally {
        resumed.close();
      }
    } finally {
      if (!hold.isCompleted()) await hold.rollback();
      await slow?.catch(() => undefined);
      stream.close();
    }
  });

  it('when instance B is cut off from Redis for 10 s while A sends, then its clients get every message once it is back, none twice', async () => {
    const redisUrl = new URL(profile.env.REDIS_URL!);
    const proxy = new TcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    await proxy.start();
    const cutOff = await listeningApp({ REDIS_URL: proxy.proxiedUrl(profile.env.REDIS_URL!) });
    const sse = await openSse(`${cutOff.url}/v1/events`, bob.auth);
    const ws = await openWs(`${cutOff.url}/v1/ws`, bob.auth);
    const sent: string[] = [];
    try {
      await send(a.app.api, alice, chatId, aliceMember, 'before');
      sent.push('before');
      await sse.until((frames) => messages(frames).length >= 1);
      await proxy.cut();
      const cutAt = Date.now();
      for (let index = 0; index < 20; index++) {
        await send(a.app.api, alice, chatId, aliceMember, `during ${index}`);
        sent.push(`during ${index}`);
      }
      // The outage lasts its 10 s whatever the machine's speed (no assertion depends on time).
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - cutAt))));
      await proxy.restore();
      await sse.until((frames) => messages(frames).length >= sent.length, 30_000, 'the missed messages');
      await ws.until((frames) => messages(frames).length >= sent.length, 30_000, 'the missed messages');
      await send(a.app.api, alice, chatId, aliceMember, 'after');
      sent.push('after');
      await sse.until((frames) => messages(frames).length >= sent.length);
      await ws.until((frames) => messages(frames).length >= sent.length);
      assert.deepEqual(sse.texts(), sent);
      assert.deepEqual(ws.texts(), sent);
    } finally {
      sse.close();
      ws.close();
      await cutOff.app.close();
      await proxy.close();
    }
  });
});
