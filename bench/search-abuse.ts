/**
 * `npx tsx bench/search-abuse.ts` (ABUSE_APP_ENV: JSON of extra app settings; with the profile's DATABASE_URL / REDIS_URL / AMQP_URL, or none for
 * embedded): what one abusive user can do to search, on 127.0.0.1 only, in a bounded run.
 *
 * 1. Bytes held per request: a search with 1000 hits of 4000-character messages; Redis MEMORY USAGE
 *    of the task's keys (services profile).
 * 2. Fairness: a "hog" keeps up to 16 pathological searches (a 1000-character AND of three words
 *    every one of its 100-word messages is likely to hold, cut to the words the service accepts) outstanding, resubmitting on 429, while another user runs
 *    rare-word searches one after the other; prints that user's p50/p95 from create to SUCCESS,
 *    alone and beside the hog.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { seedSql, startApp, type TestApp } from '../test/support/app.js';
import { createChat, join, registerAndLogin, send, unique, type User } from '../test/support/fixtures.js';
import { hitsKey, redisInspector, taskKey, userIdOf } from '../test/support/search-helpers.js';

const HOG_OUTSTANDING = 16;
const VICTIM_SEARCHES = 12;
const RUN_LIMIT_MS = 180_000;
const COMMON = Array.from(
  { length: Number(process.env.ABUSE_VOCABULARY ?? 12) },
  (_, i) => `common${String.fromCharCode(97 + (i % 26))}${i}`,
);

async function waitDone(app: TestApp, user: User, taskId: string, deadline: number): Promise<string> {
  for (;;) {
    const res = await app.api.get(`/v1/chats/search/status/${taskId}`).set(user.auth);
    const status = (res.body as { status: string }).status;
    if (status === 'SUCCESS' || status === 'FAILED') return status;
    if (Date.now() > deadline) return 'STUCK';
    await sleep(10);
  }
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

async function victimRun(app: TestApp, victim: User, word: string): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < VICTIM_SEARCHES; i++) {
    const started = performance.now();
    const res = await app.api.post('/v1/chats/search').set(victim.auth).send({ message: word });
    if (res.status !== 201) throw new Error(`victim search answered ${res.status}`);
    const status = await waitDone(
      app,
      victim,
      (res.body as { task_id: string }).task_id,
      Date.now() + 60_000,
    );
    if (status !== 'SUCCESS') throw new Error(`victim search ended ${status}`);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

async function main(): Promise<void> {
  const app = await startApp({
    RATE_LIMIT_MAX: '1000000',
    SEARCH_RESULT_TTL: '300',
    ...(JSON.parse(process.env.ABUSE_APP_ENV ?? '{}') as Record<string, string>),
  });
  try {
    const hog = await registerAndLogin(app.api);
    const victim = await registerAndLogin(app.api);
    const hogChat = await createChat(app.api, hog);
    const hogMember = await join(app.api, hog, hogChat);
    const victimChat = await createChat(app.api, victim);
    const victimMember = await join(app.api, victim, victimChat);
    const rare = unique('rare').replace('-', '');
    const big = unique('bytes').replace('-', '');
    for (let i = 0; i < 3; i++) await send(app.api, victim, victimChat, victimMember, `${rare} note ${i}`);
    const filler = 'lorem ipsum dolor sit amet '.repeat(150).slice(0, 3980);
    await seedSql(
      app,
      `INSERT INTO messages (chat_id, member_id, text)
       SELECT ?, ?, ? || ' ' || g || ' ' || ? FROM generate_series(1, 1000) g`,
      [victimChat, victimMember, big, filler],
    );
    const messages = Number(process.env.ABUSE_MESSAGES ?? 100_000);
    await seedSql(
      app,
      `INSERT INTO messages (chat_id, member_id, text)
       SELECT ?, ?, (SELECT string_agg(w, ' ') FROM (
                SELECT (?::text[])[1 + floor(random() * ?)::int] AS w FROM generate_series(1, 100 + 0 * g) s) x)
       FROM generate_series(1, ?) g`,
      [hogChat, hogMember, `{${COMMON.join(',')}}`, COMMON.length, messages],
    );
    process.stdout.write(
      `seeded ${messages} messages of common words; profile ${app.config.redisUrl ? 'services' : 'embedded'}\n`,
    );

    // 1. Bytes held per request.
    const created = await app.api.post('/v1/chats/search').set(victim.auth).send({ message: big });
    const taskId = (created.body as { task_id: string }).task_id;
    await waitDone(app, victim, taskId, Date.now() + 60_000);
    const total = (
      (await app.api.get(`/v1/chats/search/status/${taskId}`).set(victim.auth)).body as { total?: number }
    ).total;
    if (app.config.redisUrl) {
      const redis = redisInspector(app.config.redisUrl);
      const owner = await userIdOf(app, victim);
      const keys = [taskKey(owner, taskId), hitsKey(owner, taskId)];
      const sizes = await Promise.all(keys.map((key) => redis.memory('USAGE', key)));
      process.stdout.write(
        `bytes held for one search of ${total} hits (4000-char texts): ${keys
          .map((key, i) => `${key.split(':')[2]} ${sizes[i] ?? 0}`)
          .join(', ')}; total ${sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0)}\n`,
      );
      redis.disconnect();
    }

    // 2. Fairness.
    const alone = await victimRun(app, victim, rare);
    let query = Array.from({ length: 200 }, (_, i) => COMMON[i % 3])
      .join(' ')
      .slice(0, 1000);
    query = query.slice(0, query.lastIndexOf(' '));
    const probe = await app.api.post('/v1/chats/search').set(hog.auth).send({ message: query });
    if (probe.status === 400) {
      const max = Number(/at most (\d+) words/.exec((probe.body as { detail: string }).detail)?.[1] ?? 16);
      query = query.split(' ').slice(0, max).join(' ');
    } else await waitDone(app, hog, (probe.body as { task_id: string }).task_id, Date.now() + 60_000);
    const words = query.split(' ').length;
    const deadline = Date.now() + RUN_LIMIT_MS;
    let stop = false;
    const counts = { accepted: 0, refused: 0, failed: 0 };
    const hogLoop = async () => {
      const outstanding = new Set<Promise<void>>();
      while (!stop && Date.now() < deadline && counts.accepted + counts.refused < 2000) {
        if (outstanding.size >= HOG_OUTSTANDING) {
          await Promise.race(outstanding);
          continue;
        }
        const res = await app.api.post('/v1/chats/search').set(hog.auth).send({ message: query });
        if (res.status === 429) {
          counts.refused++;
          await sleep(100);
          continue;
        }
        counts.accepted++;
        const done: Promise<void> = waitDone(
          app,
          hog,
          (res.body as { task_id: string }).task_id,
          deadline,
        ).then((s) => {
          if (s === 'FAILED') counts.failed++;
          outstanding.delete(done);
        });
        outstanding.add(done);
      }
      await Promise.all(outstanding);
    };
    const hogging = hogLoop();
    await sleep(500);
    const beside = await victimRun(app, victim, rare);
    stop = true;
    await hogging;
    const ms = (values: number[]) =>
      `p50 ${percentile(values, 50).toFixed(0)} ms, p95 ${percentile(values, 95).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms`;
    process.stdout.write(`other user alone: ${ms(alone)}\n`);
    process.stdout.write(
      `other user beside the hog (${words}-word AND, up to ${HOG_OUTSTANDING} outstanding): ${ms(beside)}; ` +
        `hog tasks accepted ${counts.accepted}, refused 429 ${counts.refused}, failed ${counts.failed}\n`,
    );
  } finally {
    await app.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
