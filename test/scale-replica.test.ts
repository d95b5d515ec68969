import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { startApp, type TestApp } from './support/app.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';

const run = promisify(execFile);

/** pg_ctl on the throwaway replica `make test-scale` started (as `postgres` when we are root). */
async function pgCtl(action: 'start' | 'stop'): Promise<void> {
  const bin = `${process.env.SCALE_PGBIN}/pg_ctl`;
  const args = [
    '-D',
    `${process.env.SCALE_DIR}/replica`,
    '-w',
    '-m',
    'fast',
    '-l',
    `${process.env.SCALE_DIR}/replica.log`,
    action,
  ];
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', bin, ...args]);
  else await run(bin, args);
}

/** One statement on the replica itself (its own connection). */
async function onReplica(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// Only under `make test-scale`: a throwaway primary with a streaming replica (scripts/scale-servers.sh).
if (process.env.DATABASE_REPLICA_URLS && process.env.SCALE_DIR && process.env.SCALE_PGBIN) {
  const replicaUrl = process.env.DATABASE_REPLICA_URLS.split(',')[0]!;

  describe('read replicas (a streaming replica of a throwaway primary)', function () {
    this.timeout(60_000);
    let app: TestApp;
    let alice: User;
    let chatId: string;
    let memberId: string;

    const history = async () => {
      const res = await app.api.get(`/v1/chats/${chatId}/messages?limit=100`).set(alice.auth).expect(200);
      return (res.body as { messages: { text: string }[] }).messages.map((m) => m.text);
    };

    before(async () => {
      // No cache in front: every history page is a database read, counted where it ran.
      app = await startApp(
        { APPS: 'health,throttling,auth,chats,messages', DATABASE_REPLICA_WAIT_MS: '100' },
        { consumer: false },
      );
      alice = await registerAndLogin(app.api);
      chatId = await createChat(app.api, alice);
      memberId = await join(app.api, alice, chatId);
    });

    after(async () => {
      await onReplica(replicaUrl, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
      await app.close();
    });

    it('when the replica keeps up, then history pages are read from it and hold every message', async () => {
      await send(app.api, alice, chatId, memberId, 'one');
      await send(app.api, alice, chatId, memberId, 'two');
      const before = { ...app.service.db.reads };
      // A replica that has not replayed the writes within the wait leaves a read to the primary: polled.
      for (let attempt = 0; attempt < 100 && app.service.db.reads.replica === before.replica; attempt++) {
        assert.deepEqual(await history(), ['one', 'two']);
      }
      assert.equal(app.service.db.reads.replica, before.replica + 1);
    });

    it('when replay is paused, then a user reads the message they just sent (from the primary), and the replica serves again once it resumes', async () => {
      await onReplica(replicaUrl, 'SELECT pg_wal_replay_pause()');
      try {
        const before = { ...app.service.db.reads };
        for (const text of ['three', 'four', 'five']) {
          await send(app.api, alice, chatId, memberId, text);
          assert.equal((await history()).at(-1), text);
        }
        assert.equal(app.service.db.reads.replica, before.replica);
        assert.equal(app.service.db.reads.primary, before.primary + 3);
      } finally {
        await onReplica(replicaUrl, 'SELECT pg_wal_replay_resume()');
      }
      const before = app.service.db.reads.replica;
      // Caught up again: served by the replica (a poll: replay restarts in its own time).
      for (let attempt = 0; attempt < 100 && app.service.db.reads.replica === before; attempt++) {
        assert.deepEqual(await history(), ['one', 'two', 'three', 'four', 'five']);
      }
      assert.ok(app.service.db.reads.replica > before);
    });

    it('when the replica is stopped, then no request fails and no message is missing; reads go to the primary', async () => {
      await pgCtl('stop');
      try {
        const before = { ...app.service.db.reads };
        for (const text of ['six', 'seven']) {
          await send(app.api, alice, chatId, memberId, text);
          assert.equal((await history()).at(-1), text);
        }
        assert.deepEqual(await history(), ['one', 'two', 'three', 'four', 'five', 'six', 'seven']);
        assert.equal(app.service.db.reads.replica, before.replica);
        assert.equal(app.service.db.reads.primary, before.primary + 3);
      } finally {
        await pgCtl('start');
      }
    });
  });
}
