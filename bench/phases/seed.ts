import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import {
  BENCH_USERS,
  ensureSeeded,
  restoreCounters,
  type SeedInfo,
  type SeedOptions,
} from '../lib/seeding.js';
import { message, prng } from '../lib/text.js';

export interface BenchUser {
  id: string;
  name: string;
  token: string;
  /** chat id → member id */
  members: Map<string, string>;
}

export interface Send {
  token: string;
  userId: string;
  chatId: string;
  memberId: string;
}

export interface Fixtures {
  users: BenchUser[];
  bigChatId: string;
  bigChatSeqs: string[];
  sends: Send[];
  texts: string[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The seed phase: seeds the bench database when it holds too little, removes what earlier runs
 * added, and signs the bench users in (sessions written straight to the database).
 */
export async function seedPhase(
  options: SeedOptions,
  db: () => pg.Pool,
): Promise<{ seed: SeedInfo; skipped: boolean; db: pg.Pool; fx: Fixtures }> {
  const started = Date.now();
  const { info: seed, skipped } = await ensureSeeded(options);
  process.stderr.write(
    skipped
      ? `seed: reusing ${seed.messages.toLocaleString('en-US')} messages (seeded in ${seed.seconds} s on ${seed.seededAt})\n`
      : `seed: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  const pool = db();
  const removed = await pool.query('DELETE FROM messages WHERE seq > $1', [seed.maxSeq]);
  if (removed.rowCount) process.stderr.write(`removed ${removed.rowCount} messages left by an earlier run\n`);
  const restored = await restoreCounters(pool, seed.maxSeq);
  if (restored) process.stderr.write(`recounted ${restored} chats earlier runs sent to\n`);
  // What earlier runs deleted and updated stays as dead rows until autovacuum comes by. Every run
  // starts from the seeded state, cleaned: after one send phase the chat list ceiling read 753/s
  // against 1,374 before it (the chats sent to led the list, pointing at deleted messages).
  // The small tables are rewritten (a chat row updated by every send leaves the chats table ten
  // times its size, every page of it read by each chat list), then every table vacuumed as the seed
  // leaves it: a rewritten table has no visibility map, and the chat list's index-only scan of the
  // user's memberships would read a heap page for each.
  await pool.query('VACUUM FULL chats, members');
  await pool.query('VACUUM (ANALYZE) chats, members, messages, events');
  const users = await signIn(pool);
  const { rows: seqs } = await pool.query<{ seq: string }>(
    'SELECT seq FROM messages WHERE chat_id = $1 AND seq <= $2 ORDER BY seq',
    [seed.bigChatId, seed.maxSeq],
  );
  return { seed, skipped, db: pool, fx: sendFixtures(users, seed.bigChatId, seqs) };
}

/** The bench users with a fresh session each and their memberships. */
async function signIn(db: pg.Pool): Promise<BenchUser[]> {
  const { rows: users } = await db.query<{ id: string; name: string }>(
    `SELECT id, name FROM users WHERE name LIKE 'bench.user.%' ORDER BY name LIMIT $1`,
    [BENCH_USERS],
  );
  if (users.length < BENCH_USERS)
    throw new Error('the bench users are missing: reseed with `npm run seed -- --force`');
  const ids = users.map((user) => user.id);
  await db.query('DELETE FROM sessions WHERE user_id = ANY($1::uuid[])', [ids]);
  const { rows: members } = await db.query<{ id: string; chat_id: string; user_id: string }>(
    'SELECT id, chat_id, user_id FROM members WHERE user_id = ANY($1::uuid[])',
    [ids],
  );
  const bench: BenchUser[] = users.map((user) => ({
    ...user,
    token: randomBytes(32).toString('base64url'),
    members: new Map(),
  }));
  const byId = new Map(bench.map((user) => [user.id, user]));
  for (const member of members) byId.get(member.user_id)?.members.set(member.chat_id, member.id);
  // Sessions stored as the API stores them: the SHA-256 of the token.
  await db.query(
    `INSERT INTO sessions (token_hash, user_id, expires_at)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[])`,
    [
      bench.map((user) => sha256(user.token)),
      bench.map((user) => user.id),
      bench.map(() => new Date(Date.now() + 86_400_000)),
    ],
  );
  return bench;
}

/** Sending: every bench user posts to 16 of the small chats, round-robin over all (user, chat) pairs. */
function sendFixtures(users: BenchUser[], bigChatId: string, seqs: { seq: string }[]): Fixtures {
  const random = prng(7);
  const smallChats = [...users[0]!.members.keys()].filter((id) => id !== bigChatId);
  const sends: Send[] = [];
  for (const user of users) {
    for (let i = 0; i < 16; i++) {
      const chatId = smallChats[Math.floor(random() * smallChats.length)]!;
      sends.push({ token: user.token, userId: user.id, chatId, memberId: user.members.get(chatId)! });
    }
  }
  for (let i = sends.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [sends[i], sends[j]] = [sends[j]!, sends[i]!];
  }
  const texts = Array.from({ length: 512 }, () => message(random));
  return { users, bigChatId, bigChatSeqs: seqs.map((row) => row.seq), sends, texts };
}
