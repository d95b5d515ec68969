import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import type pg from 'pg';
import { ensureDatabaseExists } from '../../src/infra/db.js';
import { BENCH_DATABASE_URL, DEFAULT_BENCH_DATABASE_URL, migrate, pool } from './db.js';
import { Progress } from './progress.js';
import {
  RARE_HITS,
  RARE_WORDS,
  COMMON_WORDS,
  chatName,
  message,
  person,
  pick,
  prng,
  type Random,
} from './text.js';

export interface SeedOptions {
  users: number;
  chats: number;
  messages: number;
  /** Messages in the one big chat (the history benchmark pages through it). */
  bigChat: number;
  /** Parallel insert connections. */
  jobs: number;
  batch: number;
  seed: number;
  force: boolean;
}

export const DEFAULT_SEED: SeedOptions = {
  users: 10_000,
  chats: 1_000,
  messages: 1_000_000,
  bigChat: 250_000,
  jobs: 3,
  batch: 10_000,
  seed: 42,
  force: false,
};

/** Members of every chat; the benchmark signs in as them. They write none of the seeded messages. */
export const BENCH_USERS = 64;
export const benchUserName = (index: number) => `bench.user.${String(index).padStart(2, '0')}`;
/** Every seeded user has this password (one bcrypt hash, computed once and shared). */
export const SEED_PASSWORD = 'bench-password';
const BIG_CHAT_NAME = 'Общий чат (big)';
/** Regular (non-bench) members per chat. */
const BIG_CHAT_MEMBERS = 500;
const SMALL_CHAT_MEMBERS = [2, 30] as const;
const HISTORY_DAYS = 365;

/** What a finished seed wrote, kept in the bench database (table bench_seed, key 'info'). */
export interface SeedInfo {
  users: number;
  chats: number;
  messages: number;
  bigChat: number;
  bigChatId: string;
  benchUsers: number;
  /** Highest seeded seq: rows above it were added by benchmark runs. */
  maxSeq: number;
  seconds: number;
  messagesPerSecond: number;
  /** The message inserts alone (generation included), without index builds and vacuum. */
  loadSeconds: number;
  wordHits: Record<string, number>;
  seededAt: string;
}

async function meta(db: pg.Pool): Promise<void> {
  await db.query('CREATE TABLE IF NOT EXISTS bench_seed (key text PRIMARY KEY, value jsonb NOT NULL)');
}

async function readMeta<T>(db: pg.Pool, key: string): Promise<T | undefined> {
  const { rows } = await db.query<{ value: T }>('SELECT value FROM bench_seed WHERE key = $1', [key]);
  return rows[0]?.value;
}

async function writeMeta(db: pg.Pool, key: string, value: unknown): Promise<void> {
  await db.query(
    `INSERT INTO bench_seed (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    [key, JSON.stringify(value)],
  );
}

export async function readSeedInfo(db: pg.Pool): Promise<SeedInfo | undefined> {
  await meta(db);
  return readMeta<SeedInfo>(db, 'info');
}

/** The seed in the database when it holds at least what `options` asks for, else undefined. */
async function usableSeed(db: pg.Pool, options: SeedOptions): Promise<SeedInfo | undefined> {
  const info = await readSeedInfo(db);
  if (!info) return undefined;
  if (info.messages < options.messages || info.bigChat < options.bigChat) return undefined;
  if (info.users < options.users || info.chats < options.chats) return undefined;
  const { rows } = await db.query<{ count: string }>('SELECT count(*) FROM messages WHERE seq <= $1', [
    info.maxSeq,
  ]);
  return Number(rows[0]!.count) >= info.messages ? info : undefined;
}

/** Creates, migrates and seeds the bench database unless it already holds enough data. */
export async function ensureSeeded(options: SeedOptions): Promise<{ info: SeedInfo; skipped: boolean }> {
  if (options.bigChat > options.messages) throw new Error('--big-chat cannot exceed --messages');
  if (options.users < BENCH_USERS + SMALL_CHAT_MEMBERS[1]) {
    throw new Error(`--users must be at least ${BENCH_USERS + SMALL_CHAT_MEMBERS[1]}`);
  }
  if (options.chats < 2) throw new Error('--chats must be at least 2');
  const created = await ensureDatabaseExists(BENCH_DATABASE_URL);
  if (created) process.stderr.write(`created database ${BENCH_DATABASE_URL}\n`);
  await migrate();
  const db = pool(options.jobs + 1);
  try {
    await meta(db);
    await restoreIndexes(db);
    if (!options.force) {
      const info = await usableSeed(db, options);
      if (info) return { info, skipped: true };
    }
    return { info: await seed(db, options), skipped: false };
  } finally {
    await db.end();
  }
}

interface IndexDef {
  name: string;
  def: string;
}

/** Indexes dropped for a bulk load and not yet rebuilt (the previous seed was interrupted). */
async function restoreIndexes(db: pg.Pool): Promise<void> {
  const dropped = (await readMeta<IndexDef[]>(db, 'dropped_indexes')) ?? [];
  if (dropped.length === 0) return;
  process.stderr.write(`rebuilding ${dropped.length} index(es) left dropped by an interrupted seed\n`);
  await rebuildIndexes(db, dropped);
}

async function rebuildIndexes(db: pg.Pool, indexes: IndexDef[]): Promise<void> {
  const progress = new Progress('indexes ', indexes.length, 'indexes');
  progress.set(0);
  // The GIN index takes longest: build it on its own connection while the others build beside it.
  await Promise.all(
    indexes.map(async ({ def }) => {
      const client = await db.connect();
      try {
        await client.query(`SET maintenance_work_mem = '256MB'`);
        await client.query(def.replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX IF NOT EXISTS '));
      } finally {
        client.release();
      }
      progress.tick();
    }),
  );
  progress.finish();
  await db.query(`DELETE FROM bench_seed WHERE key = 'dropped_indexes'`);
}

/** Inserts rows column-wise: one `unnest` of typed arrays per batch. */
async function insertColumns(
  db: pg.Pool | pg.PoolClient,
  table: string,
  columns: [name: string, type: string][],
  values: unknown[][],
  prefix = '',
): Promise<void> {
  const names = columns.map(([name]) => name).join(', ');
  const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
  await db.query(`INSERT INTO ${table} (${names}) ${prefix} SELECT * FROM unnest(${arrays})`, values);
}

function chunks<T>(rows: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Zipf-like weights: a few busy chats, a long tail of quiet ones. */
function cumulativeWeights(count: number): Float64Array {
  const cumulative = new Float64Array(count);
  let total = 0;
  for (let i = 0; i < count; i++) {
    total += 1 / (i + 5) ** 0.9;
    cumulative[i] = total;
  }
  for (let i = 0; i < count; i++) cumulative[i]! /= total;
  return cumulative;
}

function weightedIndex(cumulative: Float64Array, random: Random): number {
  const r = random();
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Users: one shared bcrypt hash (cost as the API's default), so seeding costs one hash, not N. */
async function seedUsers(db: pg.Pool, options: SeedOptions, random: Random): Promise<Seeded['users']> {
  const passwordHash = await bcrypt.hash(SEED_PASSWORD, 12);
  const ids: string[] = [];
  const names: string[] = [];
  const displayNames: string[] = [];
  for (let i = 0; i < options.users; i++) {
    ids.push(randomUUID());
    if (i < BENCH_USERS) {
      names.push(benchUserName(i));
      displayNames.push(`Bench User ${i}`);
    } else {
      const { login, displayName } = person(random, i);
      names.push(login);
      displayNames.push(displayName);
    }
  }
  for (const [from, part] of chunks(ids, options.batch).map(
    (chunk, n) => [n * options.batch, chunk] as const,
  )) {
    await insertColumns(
      db,
      'users',
      [
        ['id', 'uuid'],
        ['name', 'text'],
        ['password_hash', 'text'],
      ],
      [part, names.slice(from, from + part.length), part.map(() => passwordHash)],
    );
  }
  return { ids, displayNames };
}

/** Chats: chat 0 is the big one. */
async function seedChats(
  db: pg.Pool,
  options: SeedOptions,
  random: Random,
  userIds: string[],
): Promise<string[]> {
  const chatIds = Array.from({ length: options.chats }, () => randomUUID());
  const chatNames = chatIds.map((_, i) => (i === 0 ? BIG_CHAT_NAME : chatName(random, i)));
  await insertColumns(
    db,
    'chats',
    [
      ['id', 'uuid'],
      ['name', 'text'],
      ['created_by', 'uuid'],
    ],
    [chatIds, chatNames, chatIds.map((_, i) => userIds[BENCH_USERS + (i % (options.users - BENCH_USERS))])],
  );
  return chatIds;
}

/**
 * Members: the bench users are in every chat; each chat also has its own regular members, who
 * write its messages. Returns each chat's authors (member ids).
 */
async function seedMembers(
  db: pg.Pool,
  options: SeedOptions,
  random: Random,
  seeded: Omit<Seeded, 'authors'>,
): Promise<string[][]> {
  const columns: [ids: string[], chats: string[], users: string[], names: string[]] = [[], [], [], []];
  const authors: string[][] = [];
  const addMember = (chat: number, user: number) => {
    const id = randomUUID();
    columns[0].push(id);
    columns[1].push(seeded.chatIds[chat]!);
    columns[2].push(seeded.users.ids[user]!);
    columns[3].push(seeded.users.displayNames[user]!);
    return id;
  };
  for (let chat = 0; chat < options.chats; chat++) {
    for (let user = 0; user < BENCH_USERS; user++) addMember(chat, user);
    const [min, max] = SMALL_CHAT_MEMBERS;
    const want = chat === 0 ? BIG_CHAT_MEMBERS : min + Math.floor(random() * (max - min + 1));
    const chosen = new Set<number>();
    const regular = options.users - BENCH_USERS;
    while (chosen.size < Math.min(want, regular)) chosen.add(BENCH_USERS + Math.floor(random() * regular));
    authors.push([...chosen].map((user) => addMember(chat, user)));
  }
  const total = columns[0].length;
  const progress = new Progress('members ', total, 'rows');
  for (let from = 0; from < total; from += options.batch) {
    const to = from + options.batch;
    await insertColumns(
      db,
      'members',
      [
        ['id', 'uuid'],
        ['chat_id', 'uuid'],
        ['user_id', 'uuid'],
        ['name', 'text'],
      ],
      columns.map((column) => column.slice(from, to)),
    );
    progress.set(Math.min(to, total));
  }
  progress.finish();
  return authors;
}

/**
 * Secondary indexes of messages are dropped for the load and rebuilt after it (much faster than
 * maintaining them row by row); their definitions are kept in bench_seed meanwhile, so an
 * interrupted seed rebuilds them next time.
 */
async function dropMessageIndexes(db: pg.Pool): Promise<IndexDef[]> {
  const { rows: indexes } = await db.query<IndexDef>(
    `SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def
     FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
     WHERE x.indrelid = 'messages'::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)`,
  );
  await writeMeta(db, 'dropped_indexes', indexes);
  for (const { name } of indexes) await db.query(`DROP INDEX IF EXISTS "${name}"`);
  return indexes;
}

/** Rare words: each in exactly RARE_HITS messages, spread over the whole history and all chats. */
function placeRareWords(options: SeedOptions, random: Random): Map<number, string> {
  const rareAt = new Map<number, string>();
  for (const word of RARE_WORDS) {
    let placed = 0;
    while (placed < RARE_HITS) {
      const index = Math.floor(random() * options.messages);
      if (rareAt.has(index)) continue;
      rareAt.set(index, word);
      placed++;
    }
  }
  return rareAt;
}

/** Generates the messages' columns batch by batch, in one deterministic order. */
function messageGenerator(
  options: SeedOptions,
  random: Random,
  seeded: Seeded,
): (batch: number) => [number[], string[], string[], string[], string[]] {
  const rareAt = placeRareWords(options, random);
  const smallChats = cumulativeWeights(options.chats - 1);
  const start = Date.now() - HISTORY_DAYS * 86_400_000;
  const step = (HISTORY_DAYS * 86_400_000) / options.messages;
  return (batch) => {
    const from = batch * options.batch;
    const to = Math.min(options.messages, from + options.batch);
    const columns: [number[], string[], string[], string[], string[]] = [[], [], [], [], []];
    for (let i = from; i < to; i++) {
      // Evenly spread big-chat messages: message i is in the big chat when floor(i * B / N) steps.
      const big =
        Math.floor(((i + 1) * options.bigChat) / options.messages) >
        Math.floor((i * options.bigChat) / options.messages);
      const chat = big ? 0 : 1 + weightedIndex(smallChats, random);
      let text = message(random);
      const rare = rareAt.get(i);
      if (rare) text = `${text} ${capitalize(rare)}, ${random() < 0.5 ? 'кстати.' : 'by the way.'}`;
      columns[0].push(i + 1);
      columns[1].push(seeded.chatIds[chat]!);
      columns[2].push(pick(random, seeded.authors[chat]!));
      columns[3].push(text);
      columns[4].push(new Date(start + i * step).toISOString());
    }
    return columns;
  };
}

/**
 * Messages: one batch at a time is generated (single-threaded, deterministic order) and handed to
 * a free connection; generation of the next batch overlaps the inserts in flight. Returns the
 * seconds it took.
 */
async function loadMessages(
  db: pg.Pool,
  options: SeedOptions,
  random: Random,
  seeded: Seeded,
): Promise<number> {
  const generate = messageGenerator(options, random, seeded);
  const batches = Math.ceil(options.messages / options.batch);
  const progress = new Progress('messages', options.messages, 'rows');
  const started = Date.now();
  let nextBatch = 0;
  await Promise.all(
    Array.from({ length: options.jobs }, async () => {
      const client = await db.connect();
      try {
        // A bulk load of generated, consistent rows: no per-row foreign-key triggers, no fsync wait.
        // (session_replication_role needs a superuser; without one the triggers simply run.)
        await client.query(`SET session_replication_role = replica`).catch(() => undefined);
        await client.query(`SET synchronous_commit = off`);
        for (let batch = nextBatch++; batch < batches; batch = nextBatch++) {
          const values = generate(batch);
          await insertColumns(client, 'messages', MESSAGE_COLUMNS, values, 'OVERRIDING SYSTEM VALUE');
          progress.tick(values[0].length);
        }
      } finally {
        await client.query(`RESET session_replication_role`).catch(() => undefined);
        client.release();
      }
    }),
  );
  progress.finish();
  return (Date.now() - started) / 1000;
}

/**
 * Sets the counters the messages trigger keeps (chat activity and message counts, members' sent
 * counts: the chat list and unread counts) from the messages themselves: for every chat after the
 * load, which runs without triggers (replica role), or for `chatIds` only.
 */
async function recountMessages(db: pg.Pool, chatIds?: string[]): Promise<void> {
  const only = chatIds ? 'WHERE chat_id = ANY($1::uuid[])' : '';
  const chatsOnly = chatIds ? 'WHERE id = ANY($1::uuid[])' : '';
  const values = chatIds ? [chatIds] : [];
  await db.query(
    `UPDATE chats c SET message_count = coalesce(s.n, 0), last_seq = coalesce(s.last_seq, 0),
            last_activity_at = GREATEST(c.created_at, s.last_at)
     FROM (SELECT id FROM chats ${chatsOnly}) t
     LEFT JOIN (SELECT chat_id, count(*) AS n, max(seq) AS last_seq, max(created_at) AS last_at
                FROM messages ${only} GROUP BY chat_id) s ON s.chat_id = t.id
     WHERE c.id = t.id`,
    values,
  );
  await db.query(
    `UPDATE members mb SET sent_count = coalesce(s.n, 0)
     FROM (SELECT id FROM members ${only}) m
     LEFT JOIN (SELECT member_id, count(*) AS n FROM messages ${only} GROUP BY member_id) s ON s.member_id = m.id
     WHERE mb.id = m.id AND mb.sent_count <> coalesce(s.n, 0)`,
    values,
  );
}

/**
 * Puts back the counters that runs moved: a send bumps its chat's activity, message count and last
 * message and its member's sent count, and deleting the run's messages afterwards does not undo
 * that. Left so, the chats sent to lead every chat list, pointing at deleted messages, and the
 * next run reads a different list than the seed made. Recounted for the chats sent to since seeding.
 */
export async function restoreCounters(db: pg.Pool, maxSeq: number): Promise<number> {
  const touched = await db.query<{ id: string }>('SELECT id FROM chats WHERE last_seq > $1', [maxSeq]);
  if (touched.rowCount === 0) return 0;
  await recountMessages(
    db,
    touched.rows.map((row) => row.id),
  );
  return touched.rows.length;
}

const MESSAGE_COLUMNS: [name: string, type: string][] = [
  ['seq', 'bigint'],
  ['chat_id', 'uuid'],
  ['member_id', 'uuid'],
  ['text', 'text'],
  ['created_at', 'timestamptz'],
];

/** How many messages each search word of the benchmark matches. */
async function countWordHits(db: pg.Pool): Promise<Record<string, number>> {
  const wordHits: Record<string, number> = {};
  for (const word of [...COMMON_WORDS, ...RARE_WORDS]) {
    const { rows } = await db.query<{ count: string }>(
      `SELECT count(*) FROM messages WHERE search_vector @@ websearch_to_tsquery('russian', $1)`,
      [word],
    );
    wordHits[word] = Number(rows[0]!.count);
  }
  return wordHits;
}

/** What the seed steps pass on: ids and names of what they inserted. */
interface Seeded {
  users: { ids: string[]; displayNames: string[] };
  chatIds: string[];
  /** Per chat, the member ids that write its messages. */
  authors: string[][];
}

/**
 * Seeding empties the tables. The database may be the one DATABASE_URL names: users the bench never
 * seeded are someone's data, kept unless --force says otherwise.
 */
async function refuseForeignData(db: pg.Pool, options: SeedOptions): Promise<void> {
  const { rows } = await db.query<{ used: boolean; seeded: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM users) AS used, EXISTS (SELECT 1 FROM bench_seed WHERE key = 'info') AS seeded`,
  );
  if (rows[0]!.used && !rows[0]!.seeded && !options.force) {
    throw new Error(
      `${BENCH_DATABASE_URL} holds users the bench did not seed; seeding would empty it. ` +
        'Set BENCH_DATABASE_URL to a database of its own, or pass --force.',
    );
  }
}

async function seed(db: pg.Pool, options: SeedOptions): Promise<SeedInfo> {
  const started = Date.now();
  const random = prng(options.seed);
  process.stderr.write(
    `seeding ${BENCH_DATABASE_URL}: ${options.users.toLocaleString('en-US')} users, ` +
      `${options.chats.toLocaleString('en-US')} chats, ${options.messages.toLocaleString('en-US')} messages ` +
      `(${options.bigChat.toLocaleString('en-US')} in one chat)\n`,
  );
  await refuseForeignData(db, options);
  await db.query(`DELETE FROM bench_seed WHERE key = 'info'`);
  // events too: it references chats (the seeded chats start with no events, event_seq 0).
  await db.query('TRUNCATE events, messages, members, chats, sessions, users');
  const users = await seedUsers(db, options, random);
  const chatIds = await seedChats(db, options, random, users.ids);
  const authors = await seedMembers(db, options, random, { users, chatIds });
  const indexes = await dropMessageIndexes(db);
  const loadSeconds = await loadMessages(db, options, random, { users, chatIds, authors });
  await rebuildIndexes(db, indexes);
  // New messages continue after the seeded ones.
  await db.query(`SELECT setval(pg_get_serial_sequence('messages', 'seq'), $1)`, [options.messages]);
  await recountMessages(db);
  process.stderr.write('vacuum analyze…\n');
  await db.query('VACUUM (ANALYZE) users, chats, members, messages');
  const wordHits = await countWordHits(db);
  const seconds = (Date.now() - started) / 1000;
  const info: SeedInfo = {
    users: options.users,
    chats: options.chats,
    messages: options.messages,
    bigChat: options.bigChat,
    bigChatId: chatIds[0]!,
    benchUsers: BENCH_USERS,
    maxSeq: options.messages,
    seconds: Math.round(seconds * 10) / 10,
    messagesPerSecond: Math.round(options.messages / seconds),
    loadSeconds: Math.round(loadSeconds * 10) / 10,
    wordHits,
    seededAt: new Date().toISOString(),
  };
  await writeMeta(db, 'info', info);
  process.stderr.write(
    `seeded in ${info.seconds} s (${info.messagesPerSecond.toLocaleString('en-US')} messages/s overall; ` +
      `message load ${loadSeconds.toFixed(1)} s = ${Math.round(options.messages / loadSeconds).toLocaleString('en-US')} rows/s)\n` +
      `word hits: ${Object.entries(wordHits)
        .map(([word, hits]) => `${word} ${hits}`)
        .join(', ')}\n`,
  );
  return info;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function count(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`--${name} must be a positive whole number`);
  return parsed;
}

/** The seed's flags, for `--help`. */
export const SEED_FLAGS = `Seed flags (the bench database is seeded again only when it holds less, or with --force):
  --users N     users (${DEFAULT_SEED.users}; at least ${BENCH_USERS + SMALL_CHAT_MEMBERS[1]})
  --chats N     chats (${DEFAULT_SEED.chats}; at least 2)
  --messages N  messages (${DEFAULT_SEED.messages})
  --big-chat N  messages in the one big chat the history pages go through (${DEFAULT_SEED.bigChat})
  --jobs N      parallel insert connections (${DEFAULT_SEED.jobs})
  --seed N      the generator's seed (${DEFAULT_SEED.seed})
  --force       seed again even when the database holds enough
  --help        this text

The bench database: BENCH_DATABASE_URL, else DATABASE_URL, else ${DEFAULT_BENCH_DATABASE_URL}
(now ${BENCH_DATABASE_URL}). It is created when missing and migrated; seeding empties its users,
chats, members, sessions and messages first.`;

/** The seed's command-line flags (`--users N`, … `--force`, `--help`), over DEFAULT_SEED. */
export function seedArgs(argv: string[]): { options: SeedOptions; help: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string' },
      chats: { type: 'string' },
      messages: { type: 'string' },
      'big-chat': { type: 'string' },
      jobs: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const options = {
    users: count(values.users, 'users', DEFAULT_SEED.users),
    chats: count(values.chats, 'chats', DEFAULT_SEED.chats),
    messages: count(values.messages, 'messages', DEFAULT_SEED.messages),
    bigChat: count(values['big-chat'], 'big-chat', DEFAULT_SEED.bigChat),
    jobs: count(values.jobs, 'jobs', DEFAULT_SEED.jobs),
    batch: DEFAULT_SEED.batch,
    seed: count(values.seed, 'seed', DEFAULT_SEED.seed),
    force: values.force,
  };
  return { options, help: values.help };
}
