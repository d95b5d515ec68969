import assert from 'node:assert/strict';
import { sharedApp, type TestApp } from './support/app.js';
import { join, registerAndLogin, send } from './support/fixtures.js';
import { historyReader, texts, type Member } from './support/history.js';
import { profile } from './support/profile.js';
import type { Knex } from '../src/infra/db.js';

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

describe('history in commit order', () => {
  let app: TestApp;
  const { newMember, sendAll, walkFrom } = historyReader(() => app);

  before(async () => {
    app = await sharedApp();
  });

  describe('GET /v1/chats/{chat_id}/messages while posts commit out of order', () => {
    let alice: Member;

    beforeEach(async () => {
      alice = await newMember();
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
