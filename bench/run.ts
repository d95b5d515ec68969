/**
 * `make bench` / `npm run bench -- [seed flags]`: seeds the bench database when it holds too little,
 * starts the built API (and a search consumer) on the local Postgres, Redis and RabbitMQ, loads it
 * with autocannon and pg, and writes bench/results/latest.{md,json} (and the README's table).
 *
 * Settings (environment): BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (32), BENCH_WARMUP (s, 2),
 * BENCH_PAGE_LIMIT (50), BENCH_SEARCH_RUNS (40), BENCH_POLL_MS (5), BENCH_DATABASE_URL,
 * BENCH_REDIS_URL (redis://127.0.0.1:6379/2), BENCH_AMQP_URL, BENCH_LOG_LEVEL (warn),
 * BENCH_README (1: update README.md's table).
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { BENCH_DATABASE_URL, MAIN_JS, ROOT, pool } from './lib/db.js';
import {
  http,
  interleaved,
  merge,
  pgLoop,
  searchTask,
  type LoadSettings,
  type Measured,
} from './lib/load.js';
import {
  formatMs,
  formatRatio,
  formatRps,
  table,
  targetList,
  updateReadme,
  writeResults,
  type Row,
  type Target,
} from './lib/report.js';
import { BENCH_USERS, SEED_PASSWORD, ensureSeeded, seedOptions } from './lib/seeding.js';
import { freePort, LOG_DIR, RssSampler, startService, waitFor, type Service } from './lib/services.js';
import type { HistoryRow } from '../src/modules/messages/repository.js';
import { encodeCursor } from '../src/modules/messages/cursor.js';
import { presentHistoryPage } from '../src/modules/messages/present.js';
import { SQL, insertParams, named, positional } from './lib/sql.js';
import { message, prng, COMMON_WORDS, RARE_WORDS } from './lib/text.js';
import { round, type LatencySummary } from './lib/stats.js';

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
}

const settings = {
  duration: setting('BENCH_DURATION', 10),
  connections: setting('BENCH_CONNECTIONS', 32),
  warmup: setting('BENCH_WARMUP', 2),
  pageLimit: setting('BENCH_PAGE_LIMIT', 50),
  searchRuns: setting('BENCH_SEARCH_RUNS', 40),
  pollMs: setting('BENCH_POLL_MS', 5),
  searchMaxResults: setting('SEARCH_MAX_RESULTS', 1000),
  redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/2',
  amqpUrl: process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
  updateReadme: process.env.BENCH_README !== '0',
};
const load: LoadSettings = {
  duration: settings.duration,
  warmup: settings.warmup,
  connections: settings.connections,
};
/** Every module but the cache: history, sessions and memberships all come from the database. */
const APPS_UNCACHED = 'health,throttling,auth,chats,messages,search,docs';
const BUDGET = '10000000';
const DEEP = 200_000;
const SHALLOW = 100;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface BenchUser {
  id: string;
  name: string;
  token: string;
  /** chat id → member id */
  members: Map<string, string>;
}

interface Fixtures {
  users: BenchUser[];
  bigChatId: string;
  bigChatSeqs: string[];
  sends: { token: string; userId: string; chatId: string; memberId: string }[];
  texts: string[];
}

async function fixtures(db: pg.Pool, bigChatId: string, maxSeq: number): Promise<Fixtures> {
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
  const { rows: seqs } = await db.query<{ seq: string }>(
    'SELECT seq FROM messages WHERE chat_id = $1 AND seq <= $2 ORDER BY seq',
    [bigChatId, maxSeq],
  );

  // Sending: every bench user posts to 16 of the small chats, round-robin over all (user, chat) pairs.
  const random = prng(7);
  const smallChats = [...bench[0]!.members.keys()].filter((id) => id !== bigChatId);
  const sends: Fixtures['sends'] = [];
  for (const user of bench) {
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
  return { users: bench, bigChatId, bigChatSeqs: seqs.map((row) => row.seq), sends, texts };
}

function serviceEnv(port: number, apps: string): NodeJS.ProcessEnv {
  const skip = new Set(['POSTGRES_HOSTS', 'POSTGRES_HOST', 'DATA_DIR']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !skip.has(name)));
  return {
    ...env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    APPS: apps,
    DATABASE_URL: BENCH_DATABASE_URL,
    REDIS_URL: settings.redisUrl,
    AMQP_URL: settings.amqpUrl,
    LOG_LEVEL: settings.logLevel,
    // Throttling stays on (its cost is part of every request) with budgets nobody reaches.
    RATE_LIMIT_MAX: BUDGET,
    SEND_RATE_LIMIT_MAX: BUDGET,
    LOGIN_FAIL_LIMIT_MAX: BUDGET,
    SEARCH_QUEUE: 'messenger.search.bench',
  };
}

function gitDescribe(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT }).toString().trim();
    return dirty ? `${commit} + uncommitted changes in src/` : commit;
  } catch {
    return 'unknown';
  }
}

async function probeCache(url: string, token: string): Promise<string> {
  let header = '';
  for (let i = 0; i < 3; i++) {
    const response = await fetch(url, { headers: { Authorization: `session_id ${token}` } });
    await response.arrayBuffer();
    header = response.headers.get('x-cache') ?? 'absent';
  }
  return header;
}

async function main(): Promise<void> {
  const runStarted = Date.now();
  const options = seedOptions(process.argv.slice(2));
  const seedStarted = Date.now();
  const { info: seed, skipped } = await ensureSeeded(options);
  process.stderr.write(
    skipped
      ? `seed: reusing ${seed.messages.toLocaleString('en-US')} messages (seeded in ${seed.seconds} s on ${seed.seededAt})\n`
      : `seed: done in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s\n`,
  );

  const db = pool(4);
  const removed = await db.query('DELETE FROM messages WHERE seq > $1', [seed.maxSeq]);
  if (removed.rowCount) process.stderr.write(`removed ${removed.rowCount} messages left by an earlier run\n`);
  const fx = await fixtures(db, seed.bigChatId, seed.maxSeq);
  const { rows: versionRows } = await db.query<{ server_version: string }>('SHOW server_version');
  const limit = settings.pageLimit;
  const pageable = fx.bigChatSeqs.length - limit;
  const deep = Math.min(DEEP, pageable);
  const searcher = fx.users[0]!;
  const reader = fx.users[0]!;
  const auth = (token: string) => ({ Authorization: `session_id ${token}` });
  const historyPath = (depth: number) =>
    `/v1/chats/${fx.bigChatId}/messages?limit=${limit}&from=${encodeCursor(fx.bigChatSeqs[depth - 1]!)}`;

  const measured: Record<string, Measured> = {};
  const search: Record<string, { job: LatencySummary; query: LatencySummary; errors: number }> = {};
  const searchRss: Record<string, number> = {};
  let pageBytes: number;
  /** Results a task kept, by word (the newest SEARCH_MAX_RESULTS of the matches). */
  const taskTotals: Record<string, number> = {};
  const notes: string[] = [];
  let apiPeakRss = 0;
  let consumerPeakRss = 0;
  const keepPeaks = (m: Measured) => {
    apiPeakRss = Math.max(apiPeakRss, m.peakRssMb.api ?? 0);
    consumerPeakRss = Math.max(consumerPeakRss, m.peakRssMb.consumer ?? 0);
    return m;
  };

  // 1. The ceilings: bare Koa on the same machine, answering `{}`, and answering the very page the
  // cached scenario reads (built here with the API's own history SQL).
  {
    const { rows: pageRows } = await db.query<HistoryRow>(positional(SQL.historyPage.text), [
      fx.bigChatId,
      fx.bigChatSeqs[SHALLOW - 1],
      limit + 1,
    ]);
    const page = presentHistoryPage(pageRows, limit);
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const pageFile = path.join(LOG_DIR, 'page.json');
    fs.writeFileSync(pageFile, JSON.stringify(page));
    pageBytes = fs.statSync(pageFile).size;
    const port = await freePort();
    const koa = startService('ceiling-koa', ['--import', 'tsx', path.join('bench', 'ceiling-koa.ts')], {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PAGE_FILE: pageFile,
    });
    try {
      await waitFor(koa, `http://127.0.0.1:${port}/`);
      const url = `http://127.0.0.1:${port}`;
      measured.koa = (await http('bare Koa {}', { url: `${url}/` }, load, { koa: koa.pid })).measured;
      measured.koaPage = (
        await http('bare Koa, same page', { url: `${url}/page` }, load, { koa: koa.pid })
      ).measured;
    } finally {
      await koa.stop();
    }
  }

  // 2. The API with every module (cache included) and one search consumer: the real flow.
  let services: Service[] = [];
  const stopAll = async () => {
    await Promise.all(services.map((service) => service.stop()));
    services = [];
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  {
    const port = await freePort();
    const api = startService('api', [MAIN_JS, 'api'], serviceEnv(port, 'all'));
    const consumer = startService('consumer', [MAIN_JS, 'consumer'], serviceEnv(port, 'all'));
    services = [api, consumer];
    const url = `http://127.0.0.1:${port}`;
    const watched = { api: api.pid, consumer: consumer.pid };
    try {
      await waitFor(api, `${url}/v1/chats/${fx.bigChatId}/messages?limit=1`, auth(reader.token));
      // One real login through the API (the seeded password hash works); its session reads and searches.
      const login = await fetch(`${url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user_name: searcher.name, password: SEED_PASSWORD }),
      });
      if (login.status !== 200) throw new Error(`login through the API failed: ${login.status}`);
      searcher.token = ((await login.json()) as { session_id: string }).session_id;

      measured.ping = keepPeaks((await http('GET /ping', { url: `${url}/ping` }, load, watched)).measured);

      const cachedUrl = `${url}${historyPath(SHALLOW)}`;
      const xCache = await probeCache(cachedUrl, reader.token);
      notes.push(`Cached page probe before the run: \`X-Cache: ${xCache}\` (third read of the page).`);
      measured.cached = keepPeaks(
        (await http('history, cached', { url: cachedUrl, headers: auth(reader.token) }, load, watched))
          .measured,
      );

      // The straight INSERT (32 pg clients), then the API's send, round-robin over the same pairs.
      let nextInsert = 0;
      const insertSql = positional(SQL.insertMessage.text);
      measured.insert = (
        await pgLoop(
          'straight INSERT (pg)',
          BENCH_DATABASE_URL,
          insertSql,
          () => {
            const send = fx.sends[nextInsert % fx.sends.length]!;
            const text = fx.texts[nextInsert++ % fx.texts.length]!;
            return insertParams(send.chatId, send.memberId, send.userId, text);
          },
          load,
        )
      ).measured;
      let nextSend = 0;
      measured.send = keepPeaks(
        (
          await http(
            'send message',
            {
              url,
              requests: [
                {
                  method: 'POST',
                  setupRequest: (request) => {
                    const send = fx.sends[nextSend % fx.sends.length]!;
                    const text = fx.texts[nextSend++ % fx.texts.length]!;
                    return {
                      ...request,
                      path: `/v1/chats/${send.chatId}/messages?user_id=${send.memberId}`,
                      headers: { ...auth(send.token), 'Content-Type': 'application/json' },
                      body: JSON.stringify({ message: text }),
                    };
                  },
                },
              ],
            },
            load,
            watched,
          )
        ).measured,
      );

      // Search: create → SUCCESS through API, RabbitMQ, consumer and Redis, against the same SQL
      // straight through pg, interleaved run by run.
      const searchSql = named(SQL.search.text);
      const params = (query: string): Record<string, unknown> => ({
        query,
        userId: searcher.id,
        chatId: null,
        memberId: null,
        after: null,
        before: null,
        limit: settings.searchMaxResults,
      });
      const straight = await db.connect();
      try {
        for (const [kind, words] of [
          ['common', COMMON_WORDS],
          ['rare', RARE_WORDS],
        ] as const) {
          const word = (run: number) => words[run % words.length]!;
          const sampler = new RssSampler([api.pid, consumer.pid]);
          const result = await interleaved(`search, ${kind} words`, settings.searchRuns, 5, {
            query: async (run) => {
              const p = params(word(run));
              await straight.query(
                searchSql.text,
                searchSql.order.map((name) => p[name]),
              );
            },
            job: async (run) => {
              taskTotals[word(run)] = await searchTask(url, searcher.token, word(run), settings.pollMs);
            },
          });
          const peaks = sampler.stop();
          apiPeakRss = Math.max(apiPeakRss, peaks.get(api.pid) ?? 0);
          consumerPeakRss = Math.max(consumerPeakRss, peaks.get(consumer.pid) ?? 0);
          if (result.job.lastError) notes.push(`Search job error (${kind}): ${result.job.lastError}`);
          if (result.query.lastError) notes.push(`Straight query error (${kind}): ${result.query.lastError}`);
          search[kind] = {
            job: result.job.samples.summary(),
            query: result.query.samples.summary(),
            errors: result.job.errors + result.query.errors,
          };
          searchRss[kind] = peaks.get(api.pid) ?? 0;
        }
      } finally {
        straight.release();
      }
    } finally {
      await stopAll();
    }
  }

  // 3. The API without the cache module: every history page, session and membership from Postgres.
  {
    const port = await freePort();
    const api = startService('api-uncached', [MAIN_JS, 'api'], serviceEnv(port, APPS_UNCACHED));
    services = [api];
    const url = `http://127.0.0.1:${port}`;
    const watched = { api: api.pid };
    try {
      await waitFor(api, `${url}/v1/chats/${fx.bigChatId}/messages?limit=1`, auth(reader.token));
      const xCache = await probeCache(`${url}${historyPath(SHALLOW)}`, reader.token);
      notes.push(`Uncached runs: APPS=${APPS_UNCACHED}; page probe \`X-Cache: ${xCache}\`.`);
      const random = prng(11);
      measured.random = keepPeaks(
        (
          await http(
            'history, uncached, random depth',
            {
              url,
              headers: auth(reader.token),
              requests: [
                {
                  method: 'GET',
                  setupRequest: (request) => ({
                    ...request,
                    path: historyPath(1 + Math.floor(random() * pageable)),
                  }),
                },
              ],
            },
            load,
            watched,
          )
        ).measured,
      );
      // Depth 100 and depth 200,000 alternate in halves (A B A B), so drift hits both alike.
      const half = settings.duration / 2;
      const shallowRuns = [];
      const deepRuns = [];
      for (let round = 0; round < 2; round++) {
        shallowRuns.push(
          await http(
            `history, uncached, depth ${SHALLOW}`,
            { url: `${url}${historyPath(SHALLOW)}`, headers: auth(reader.token) },
            { ...load, warmup: round === 0 ? load.warmup : 0 },
            watched,
            half,
          ),
        );
        deepRuns.push(
          await http(
            `history, uncached, depth ${deep.toLocaleString('en-US')}`,
            { url: `${url}${historyPath(deep)}`, headers: auth(reader.token) },
            { ...load, warmup: round === 0 ? load.warmup : 0 },
            watched,
            half,
          ),
        );
      }
      measured.shallow = keepPeaks(merge(shallowRuns));
      measured.deep = keepPeaks(merge(deepRuns));
    } finally {
      await stopAll();
    }
  }

  const sent = await db.query('DELETE FROM messages WHERE seq > $1', [seed.maxSeq]);
  await db.end();

  // Results.
  const m = measured as Record<
    'koa' | 'koaPage' | 'ping' | 'cached' | 'insert' | 'send' | 'random' | 'shallow' | 'deep',
    Measured
  >;
  const vsKoa = (x: Measured) => `${formatRatio(x.rps / m.koa.rps)} bare Koa`;
  const httpRow = (scenario: string, x: Measured, extra: Partial<Row> = {}): Row => ({
    scenario,
    rps: x.rps,
    p50: x.latency.p50,
    p95: x.latency.p95,
    p99: x.latency.p99,
    errors: x.errors,
    rssMb: x.peakRssMb.api,
    ...extra,
  });
  const cachedShare = m.cached.rps / m.koa.rps;
  const cachedMet = cachedShare >= 0.6 && m.cached.latency.p99 < 10;
  const depthCost = m.shallow.rps / m.deep.rps;
  const depthP50 = m.deep.latency.p50 / m.shallow.latency.p50;
  const sendShare = m.send.rps / m.insert.rps;
  const common = search.common!;
  const rare = search.rare!;
  const searchTarget = (s: typeof common) => s.job.p95 < 150 && s.job.p95 / s.query.p95 <= 1.5;
  const deepLabel = deep.toLocaleString('en-US');

  const rows: Row[] = [
    httpRow('bare Koa `{}` (ceiling)', m.koa, { rssMb: undefined, ratio: '1.00× (ceiling)' }),
    httpRow(`bare Koa, the same ${limit}-message page (${(pageBytes / 1024).toFixed(1)} KB)`, m.koaPage, {
      rssMb: undefined,
      ratio: vsKoa(m.koaPage),
    }),
    httpRow('`GET /ping`', m.ping, { ratio: vsKoa(m.ping) }),
    httpRow('history page, cached (one chat, hot)', m.cached, {
      ratio: `${vsKoa(m.cached)}; ${formatRatio(m.cached.rps / m.koaPage.rps)} same-page Koa`,
      target: '≥ 0.60× bare Koa, p99 < 10 ms',
      met: cachedMet,
    }),
    httpRow('history page, uncached, random depth', m.random, { ratio: vsKoa(m.random) }),
    httpRow(`history page, uncached, depth ${SHALLOW}`, m.shallow, { ratio: vsKoa(m.shallow) }),
    httpRow(`history page, uncached, depth ${deepLabel}`, m.deep, {
      ratio: `${formatRatio(depthCost)} depth ${SHALLOW} (cost)`,
      target: `≤ 1.30× depth ${SHALLOW}`,
      met: depthCost <= 1.3,
    }),
    httpRow('straight INSERT via pg (ceiling)', m.insert, { ratio: '1.00× (ceiling)' }),
    httpRow('send message', m.send, {
      ratio: `${formatRatio(sendShare)} straight INSERT`,
      target: '≥ 0.50× straight INSERT',
      met: sendShare >= 0.5,
    }),
  ];
  for (const [kind, s] of [
    ['common', common],
    ['rare', rare],
  ] as const) {
    const words = (kind === 'common' ? COMMON_WORDS : RARE_WORDS).join(', ');
    rows.push(
      {
        scenario: `straight search query via pg, ${kind} words (${words})`,
        p50: s.query.p50,
        p95: s.query.p95,
        p99: s.query.p99,
        errors: 0,
        ratio: '1.00× (ceiling)',
      },
      {
        scenario: `search create → SUCCESS, ${kind} words`,
        p50: s.job.p50,
        p95: s.job.p95,
        p99: s.job.p99,
        errors: s.errors,
        rssMb: searchRss[kind],
        ratio: `${formatRatio(s.job.p95 / s.query.p95)} straight query (p95)`,
        target: 'p95 < 150 ms, ≤ 1.50× straight query',
        met: searchTarget(s),
      },
    );
  }

  const targets: Target[] = [
    {
      target: 'cached history page ≥ 60% of bare Koa req/s',
      measured: `${formatRps(m.cached.rps)} vs ${formatRps(m.koa.rps)} req/s = ${(cachedShare * 100).toFixed(0)}%`,
      met: cachedShare >= 0.6,
    },
    {
      target: `cached history page p99 < 10 ms at ${settings.connections} connections`,
      measured: `p99 ${formatMs(m.cached.latency.p99)} ms`,
      met: m.cached.latency.p99 < 10,
    },
    {
      target: `uncached page at depth ${deepLabel} within 1.3× of depth ${SHALLOW}`,
      measured:
        `${formatRps(m.deep.rps)} vs ${formatRps(m.shallow.rps)} req/s = ${formatRatio(depthCost)} the cost; ` +
        `p50 ${formatMs(m.deep.latency.p50)} vs ${formatMs(m.shallow.latency.p50)} ms = ${formatRatio(depthP50)}`,
      met: depthCost <= 1.3,
    },
    {
      target: 'send message ≥ 50% of the straight INSERT ceiling',
      measured: `${formatRps(m.send.rps)} vs ${formatRps(m.insert.rps)}/s = ${(sendShare * 100).toFixed(0)}%`,
      met: sendShare >= 0.5,
    },
    ...(['common', 'rare'] as const).flatMap((kind) => {
      const s = search[kind]!;
      return [
        {
          target: `search create → SUCCESS p95 < 150 ms (${kind} words, ${seed.messages.toLocaleString('en-US')} messages)`,
          measured: `p50 ${formatMs(s.job.p50)} ms, p95 ${formatMs(s.job.p95)} ms`,
          met: s.job.p95 < 150,
        },
        {
          target: `search job ≤ 1.5× the straight query (${kind} words)`,
          measured:
            `p95 ${formatMs(s.job.p95)} vs ${formatMs(s.query.p95)} ms = ${formatRatio(s.job.p95 / s.query.p95)}; ` +
            `p50 ${formatMs(s.job.p50)} vs ${formatMs(s.query.p50)} ms = ${formatRatio(s.job.p50 / s.query.p50)}`,
          met: s.job.p95 / s.query.p95 <= 1.5,
        },
      ];
    }),
    {
      target: 'API RSS < 200 MB under load',
      measured: `peak ${Math.round(apiPeakRss)} MB over all API scenarios (consumer peak ${Math.round(consumerPeakRss)} MB)`,
      met: apiPeakRss < 200,
    },
  ];

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const context = {
    date: new Date().toISOString(),
    commit: gitDescribe(),
    machine: `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, ${os.type()} ${os.release()}`,
    node: process.version,
    postgres: versionRows[0]!.server_version,
    seed: { ...seed, reused: skipped },
    settings: {
      ...settings,
      appsUncached: APPS_UNCACHED,
      budgets: BUDGET,
      deepDepth: deep,
      shallowDepth: SHALLOW,
    },
    runSeconds: Math.round((Date.now() - runStarted) / 1000),
    messagesAddedAndRemoved: sent.rowCount,
  };

  const header = [
    `Run ${context.date.slice(0, 16).replace('T', ' ')} UTC on ${context.machine}; Node ${context.node}, ` +
      `PostgreSQL ${context.postgres}; commit ${context.commit}.`,
    `Data: ${seed.messages.toLocaleString('en-US')} messages (${seed.bigChat.toLocaleString('en-US')} in one chat), ` +
      `${seed.users.toLocaleString('en-US')} users, ${seed.chats.toLocaleString('en-US')} chats; seeded in ${seed.seconds} s ` +
      `(${seed.messagesPerSecond.toLocaleString('en-US')} messages/s with index builds and vacuum; message inserts alone ` +
      `${seed.loadSeconds} s).`,
    `Each HTTP scenario: ${settings.duration} s after a ${settings.warmup} s warm-up, ${settings.connections} connections ` +
      `(autocannon, in the same machine); history pages of ${limit} messages; search: ${settings.searchRuns} sequential ` +
      `tasks per word kind, status polled every ${settings.pollMs} ms, interleaved with the same SQL straight through pg.`,
  ]
    .map((line) => `- ${line}`)
    .join('\n');
  const methodNotes = [
    'The API runs from `dist/` with Postgres, Redis and RabbitMQ (one `consumer` process), every module on, ' +
      `throttling on with budgets raised to ${Number(BUDGET).toLocaleString('en-US')}, \`LOG_LEVEL=${settings.logLevel}\`, ` +
      'default pool (`DB_POOL_MAX`).',
    `Ratios are from this one run on a shared machine; the load generator (autocannon, in the runner's process) ` +
      `shares the ${os.cpus().length} cores with the API, Postgres, Redis and RabbitMQ.`,
    `The same-page Koa row serves the cached scenario's page (${(pageBytes / 1024).toFixed(1)} KB of JSON) from ` +
      'an object serialized per request: the ceiling for that payload, shown for reference.',
    `Depth ${SHALLOW} vs ${deepLabel}: alternated in halves (A B A B); "cost" is req/s at depth ${SHALLOW} ÷ req/s at depth ${deepLabel}.`,
    `Send and the straight INSERT: the same ${fx.sends.length} (user, chat, member) triples round-robin; the ` +
      `straight INSERT is the repository’s statement through ${settings.connections} pg clients. Rows they add are ` +
      'deleted afterwards.',
    `Search words: ${[...COMMON_WORDS, ...RARE_WORDS]
      .map((word) => `${word} (${(seed.wordHits[word] ?? 0).toLocaleString('en-US')} matching messages)`)
      .join(
        ', ',
      )}; a task keeps the newest ${settings.searchMaxResults} with highlights. The searching user is a ` +
      'member of every chat, so each query covers all messages. Polling adds up to one poll interval to a job.',
    ...notes,
  ];
  const markdown = [
    '# Benchmark: latest results',
    '',
    header,
    '',
    table(rows),
    '',
    '## Targets',
    '',
    targetList(targets),
    '',
    '## Notes',
    '',
    methodNotes.map((note) => `- ${note}`).join('\n'),
    '',
  ].join('\n');
  const round2 = (s: LatencySummary) => ({
    count: s.count,
    mean: round(s.mean),
    p50: round(s.p50),
    p95: round(s.p95),
    p99: round(s.p99),
    max: round(s.max),
  });
  const json = {
    ...context,
    rows,
    targets,
    scenarios: Object.fromEntries(
      Object.entries(measured).map(([name, x]) => [
        name,
        { ...x, rps: round(x.rps, 1), seconds: round(x.seconds), latency: round2(x.latency) },
      ]),
    ),
    search: Object.fromEntries(
      (['common', 'rare'] as const).map((kind) => [
        kind,
        {
          words: kind === 'common' ? COMMON_WORDS : RARE_WORDS,
          matches: Object.fromEntries(
            (kind === 'common' ? COMMON_WORDS : RARE_WORDS).map((word) => [word, seed.wordHits[word]]),
          ),
          keptPerTask: Object.fromEntries(
            (kind === 'common' ? COMMON_WORDS : RARE_WORDS).map((word) => [word, taskTotals[word]]),
          ),
          job: round2(search[kind]!.job),
          query: round2(search[kind]!.query),
          errors: search[kind]!.errors,
        },
      ]),
    ),
    peakRssMb: { api: round(apiPeakRss, 1), consumer: round(consumerPeakRss, 1) },
    notes: methodNotes,
  };
  const files = await writeResults(path.join(ROOT, 'bench', 'results'), markdown, json);
  if (settings.updateReadme) {
    const readme = `${header}\n\n${table(rows)}\n\n${targetList(targets)}`;
    if (!(await updateReadme(readme))) process.stderr.write('README.md has no bench markers: not updated\n');
  }
  process.stdout.write(`\n${table(rows)}\n\n${targetList(targets)}\n\nwritten: ${files.md}, ${files.json}\n`);
  process.stdout.write(`logs of the processes: ${LOG_DIR}; whole run ${context.runSeconds} s\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
