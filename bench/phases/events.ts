import { createHash, randomBytes } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { auth, startApi, type Deployment } from '../lib/api.js';
import { BENCH_DATABASE_URL } from '../lib/db.js';
import { http as load } from '../lib/load.js';
import { formatMs, formatRatio, formatRps, type Row, type Target } from '../lib/report.js';
import { cpuSeconds, rssMb, sleep } from '../lib/services.js';
import { Samples, type LatencySummary } from '../lib/stats.js';
import { openRetrying, openStream, StreamReaders, wallNow, type SseStream } from '../lib/stream-readers.js';
import { httpRow, scenario, type Context, type Phase, type PhaseReport } from './phase.js';

const IDLE_STREAMS = Number(process.env.BENCH_EVENTS_STREAMS ?? 10_000);
/** The steps to run (BENCH_EVENTS_STEPS, a comma list): all three by default. */
const STEPS = (process.env.BENCH_EVENTS_STEPS ?? 'idle,fanout,resume').split(',').map((step) => step.trim());
const FANOUT_STREAMS = Number(process.env.BENCH_FANOUT_STREAMS ?? 1000);
const FANOUT_RATE = Number(process.env.BENCH_FANOUT_RATE ?? 200);
const FANOUT_SECONDS = 10;
const RESUME_EVENTS = 10_000;
const HOLD_MS = 5000;
/** Streams opened at once (each open reads the caller's chats). */
const OPEN_BATCH = 200;
/** One fan-out stream in this many is parsed and timed; the others are read and discarded (the bench's own CPU). */
const PROBE_EVERY = 10;
/** Processes reading the fan-out streams (clients of their own, as in life: see stream-readers.ts). */
const READER_PROCESSES = 2;

/** Streams refused while a burst of them opens (openRetrying), opened again. */
let reopened = 0;
const OPEN_ATTEMPTS = 3;

/** Opens `count` streams, `OPEN_BATCH` at a time; the i-th from `target(i)`. */
async function openMany(
  count: number,
  target: (i: number) => { url: string; token: string },
  onMessage?: (text: string) => void,
): Promise<SseStream[]> {
  const streams: SseStream[] = [];
  for (let start = 0; start < count; start += OPEN_BATCH) {
    const batch = Array.from({ length: Math.min(OPEN_BATCH, count - start) }, (_, k) => {
      const { url, token } = target(start + k);
      return openRetrying(`${url}/v1/events`, auth(token), OPEN_ATTEMPTS, onMessage, () => reopened++);
    });
    streams.push(...(await Promise.all(batch)));
  }
  const refused = streams.filter((stream) => stream.status !== 200);
  if (refused.length) {
    for (const stream of streams) stream.close();
    const statuses = [...new Set(refused.map((stream) => stream.status))].join(', ');
    throw new Error(`${refused.length} of ${count} event streams were refused (HTTP ${statuses})`);
  }
  return streams;
}

/** `/ping` round trips, `count` of them `gapMs` apart: how long the API's event loop keeps a request waiting. */
async function pings(url: string, count = 40, gapMs = 50): Promise<LatencySummary> {
  const samples = new Samples();
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const response = await fetch(`${url}/ping`);
    await response.arrayBuffer();
    samples.add(performance.now() - started);
    await sleep(gapMs);
  }
  return samples.summary();
}

/** A gauge or counter of the API's /metrics (summed over its labels). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** A metric summed over several API processes. */
async function sumOf(urls: string[], name: string): Promise<number> {
  let sum = 0;
  for (const url of urls) sum += await metric(url, name);
  return sum;
}

/** Waits (30 s at most) until the API processes at `urls` hold no open stream. */
async function allClosed(urls: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await sumOf(urls, 'messenger_event_streams_open')) > 0 && Date.now() < deadline) await sleep(200);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Figures {
  idle?: {
    streams: number;
    rssBeforeMb: number;
    rssOpenMb: number;
    kbPerStream: number;
    pingBefore: LatencySummary;
    pingOpen: LatencySummary;
    lagBeforeMs: number;
    lagOpenMs: number;
    openSeconds: number;
  };
  fanout?: {
    probes: number;
    failures: number;
    /** Events the two instances read back from the database for single streams meanwhile. */
    replayed: number;
    /** Events the two instances read from the database once per chat (gaps the bus left) meanwhile. */
    filled: number;
    members: number;
    streams: number;
    sent: number;
    received: number;
    expected: number;
    sendSeconds: number;
    latency: LatencySummary;
    /** The POSTs' own round trips (the send's answer, before any stream hears of it). */
    sendLatency: LatencySummary;
    /** Event-loop delay p99 (ms) meanwhile: the bench's (it sends and times the answers), each API's (prom-client's gauge). */
    loops: { benchP99: number; apiP99: number; api2P99: number };
    /** CPU time (user + system) over the send window: each API instance, and the processes reading the streams. */
    cpu: { api: number; api2: number; bench: number; windowSeconds: number };
  };
  resume?: {
    events: number;
    seconds: number;
    commits: number;
    replayed: number;
    batches: number;
    /** The user's chats, and the length of the id they resumed from (Last-Event-ID). */
    chats: number;
    idChars: number;
  };
}

const figures: Figures = {};

/** 10,000 idle SSE streams on one API process: its RSS per stream and how long /ping waits. */
async function idle(ctx: Context, api: Deployment): Promise<void> {
  if (IDLE_STREAMS === 0) return;
  const users = ctx.fx.users;
  const pingBefore = await pings(api.url);
  const lagBeforeMs = (await metric(api.url, 'nodejs_eventloop_lag_seconds')) * 1000;
  const rssBeforeMb = rssMb(api.api.pid) ?? 0;
  const started = performance.now();
  process.stderr.write(`events: opening ${IDLE_STREAMS} idle SSE streams\n`);
  const streams = await openMany(IDLE_STREAMS, (i) => ({
    url: api.url,
    token: users[i % users.length]!.token,
  }));
  const openSeconds = (performance.now() - started) / 1000;
  try {
    await sleep(HOLD_MS);
    const pingOpen = await pings(api.url);
    const lagOpenMs = (await metric(api.url, 'nodejs_eventloop_lag_seconds')) * 1000;
    const rssOpenMb = rssMb(api.api.pid) ?? 0;
    figures.idle = {
      streams: streams.length,
      rssBeforeMb,
      rssOpenMb,
      kbPerStream: ((rssOpenMb - rssBeforeMb) * 1024) / streams.length,
      pingBefore,
      pingOpen,
      lagBeforeMs,
      lagOpenMs,
      openSeconds,
    };
  } finally {
    for (const stream of streams) stream.close();
  }
  await allClosed([api.url]);
}

/**
 * 1,000 streams of one chat's members over two API instances (a second one started on the same
 * Postgres and Redis), 200 messages/s sent for 10 s: send→receive latency; then the send rate
 * with those streams open against none.
 */
async function fanout(ctx: Context, api: Deployment): Promise<void> {
  const { rows: chats } = await ctx.db.query<{ chat_id: string }>(
    'SELECT chat_id FROM members WHERE left_at IS NULL GROUP BY chat_id ORDER BY count(*) DESC LIMIT 1',
  );
  const chatId = chats[0]!.chat_id;
  const { rows: members } = await ctx.db.query<{ id: string; user_id: string }>(
    'SELECT id, user_id FROM members WHERE chat_id = $1 AND left_at IS NULL ORDER BY id LIMIT $2',
    [chatId, FANOUT_STREAMS],
  );
  const tokens = members.map(() => randomBytes(32).toString('base64url'));
  await ctx.db.query(
    `INSERT INTO sessions (token_hash, user_id, expires_at)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[])`,
    [tokens.map(sha256), members.map((m) => m.user_id), members.map(() => new Date(Date.now() + 3_600_000))],
  );
  const second = await startApi(ctx.settings, 'api-2', `/v1/chats/${chatId}/messages?limit=1`, tokens[0]!);
  const urls = [api.url, second.url];
  const readers = await StreamReaders.start(READER_PROCESSES);
  let open = false;
  try {
    process.stderr.write(
      `events: ${FANOUT_STREAMS} streams of ${members.length} members over 2 instances, read by ${READER_PROCESSES} processes\n`,
    );
    const probes = FANOUT_STREAMS / PROBE_EVERY;
    const targets = Array.from({ length: FANOUT_STREAMS }, (_, i) => {
      const probe = i < probes;
      const token = probe
        ? tokens[(i * PROBE_EVERY) % tokens.length]!
        : tokens[(i - probes) % tokens.length]!;
      return { url: `${urls[i % 2]!}/v1/events`, headers: auth(token), probe };
    });
    open = true;
    const opened = await readers.open(targets, OPEN_BATCH / READER_PROCESSES, OPEN_ATTEMPTS);
    reopened += opened.reopened;
    const refused = opened.statuses.filter((status) => status !== 200);
    if (refused.length) {
      const statuses = [...new Set(refused)].join(', ');
      throw new Error(`${refused.length} of ${FANOUT_STREAMS} event streams were refused (HTTP ${statuses})`);
    }
    const readBack = async () => ({
      replayed: await sumOf(urls, 'messenger_events_replayed_total'),
      filled: await sumOf(urls, 'messenger_events_filled_total'),
    });
    const before = await readBack();
    await sleep(1000);
    await readers.take();
    const total = FANOUT_RATE * FANOUT_SECONDS;
    const sends: Promise<void>[] = [];
    const failures: string[] = [];
    const answered = new Samples();
    process.stderr.write(`events: sending ${total} messages, ${FANOUT_RATE}/s\n`);
    const benchLoop = monitorEventLoopDelay({ resolution: 5 });
    benchLoop.enable();
    const cpuBefore = {
      api: cpuSeconds(api.api.pid),
      api2: cpuSeconds(second.pid),
      readers: await readers.cpuSeconds(),
    };
    const started = performance.now();
    for (let n = 0; n < total; n++) {
      const due = started + (n * 1000) / FANOUT_RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const k = n % members.length;
      const at = performance.now();
      sends.push(
        fetch(`${urls[n % 2]}/v1/chats/${chatId}/messages?user_id=${members[k]!.id}`, {
          method: 'POST',
          headers: { ...auth(tokens[k]!), 'Content-Type': 'application/json' },
          // When it was sent, on the clock the readers share: they time the arrival.
          body: JSON.stringify({ message: `fan-out ${n} ${wallNow().toFixed(3)}` }),
        }).then(
          async (response) => {
            const body = await response.text();
            answered.add(performance.now() - at);
            if (response.status !== 201) failures.push(`${response.status} ${body.slice(0, 200)}`);
          },
          (error: unknown) => void failures.push(String(error)),
        ),
      );
    }
    await Promise.all(sends);
    const sendSeconds = (performance.now() - started) / 1000;
    if (failures.length) {
      ctx.notes.push(`Fan-out: ${failures.length} of ${total} sends failed, first: ${failures[0]}`);
      process.stderr.write(`events: ${failures.length} sends failed, first: ${failures[0]}\n`);
    }
    const expected = (total - failures.length) * probes;
    const deadline = Date.now() + 20_000;
    while ((await readers.received()) < expected && Date.now() < deadline) await sleep(100);
    benchLoop.disable();
    const loops = {
      benchP99: benchLoop.percentile(99) / 1e6,
      apiP99: (await metric(api.url, 'nodejs_eventloop_lag_p99_seconds')) * 1000,
      api2P99: (await metric(second.url, 'nodejs_eventloop_lag_p99_seconds')) * 1000,
    };
    const cpu = {
      api: (cpuSeconds(api.api.pid) ?? 0) - (cpuBefore.api ?? 0),
      api2: (cpuSeconds(second.pid) ?? 0) - (cpuBefore.api2 ?? 0),
      bench: (await readers.cpuSeconds()) - cpuBefore.readers,
      windowSeconds: (performance.now() - started) / 1000,
    };
    const latencies = await readers.take();
    const received = latencies.length;
    const latency = new Samples();
    for (const ms of latencies) latency.add(ms);
    const after = await readBack();
    figures.fanout = {
      probes,
      failures: failures.length,
      replayed: after.replayed - before.replayed,
      filled: after.filled - before.filled,
      members: members.length,
      streams: FANOUT_STREAMS,
      sent: total - failures.length,
      received,
      expected,
      sendSeconds,
      latency: latency.summary(),
      sendLatency: answered.summary(),
      loops,
      cpu,
    };
    // The send rate with the streams open (each send fanned out to them), then without.
    const sender = members[0]!;
    const options = {
      url: `${api.url}/v1/chats/${chatId}/messages?user_id=${sender.id}`,
      method: 'POST' as const,
      headers: { ...auth(tokens[0]!), 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: 'send rate probe' }),
    };
    // Its peak RSS counts towards the API's (the target includes 1,000 open streams).
    ctx.measured.sendStreamsOpen = ctx.peaks.keep(
      (await load('send, 1,000 streams open', options, ctx.load, api.watched)).measured,
    );
    await readers.closeStreams();
    open = false;
    // Settled before the baseline: every stream closed on both instances, and their users' offline
    // presence (sent PRESENCE_DEBOUNCE_MS after a user's last stream closes, 3 s) gone out.
    await allClosed(urls);
    await sleep(3000 + 2000);
    ctx.measured.sendNoStreams = ctx.peaks.keep(
      (await load('send, no streams open', options, ctx.load, api.watched)).measured,
    );
  } finally {
    if (open) await readers.closeStreams().catch(() => undefined);
    await readers.stop();
    await second.stop();
    await ctx.db.query('DELETE FROM sessions WHERE token_hash = ANY($1::text[])', [tokens.map(sha256)]);
  }
}

/** A stream resuming 10,000 events behind, over 3 chats: time to receive them all, and the database's work. */
async function resume(ctx: Context, api: Deployment): Promise<void> {
  const user = ctx.fx.users[1]!;
  const { rows: mine } = await ctx.db.query<{ id: string; chats: string }>(
    `SELECT c.id, count(*) OVER () AS chats FROM members m JOIN chats c ON c.id = m.chat_id
     WHERE m.user_id = $1 AND m.left_at IS NULL ORDER BY c.id`,
    [user.id],
  );
  const chatIds = mine.slice(0, 3).map((row) => row.id);
  // The id a client holds: the last one the server gave it (a long poll answering at once).
  const polled = await fetch(`${api.url}/v1/events?wait=0`, { headers: auth(user.token) });
  if (polled.status !== 200) throw new Error(`resume: the long poll answered ${polled.status}`);
  const since = ((await polled.json()) as { last_event_id: string }).last_event_id;
  // The events as the send writes them (same payload), straight into the log: the replay reads only it.
  await ctx.db.query(
    `WITH spread AS (SELECT i, ($1::uuid[])[1 + i % 3] AS chat_id FROM generate_series(0, $2 - 1) AS i),
          numbered AS (SELECT s.i, s.chat_id, c.event_seq + row_number() OVER (PARTITION BY s.chat_id ORDER BY s.i) AS seq
                       FROM spread s JOIN chats c ON c.id = s.chat_id),
          added AS (INSERT INTO events (chat_id, seq, kind, payload)
                    SELECT n.chat_id, n.seq, 'message', jsonb_build_object(
                      'chat_id', n.chat_id, 'message_id', gen_random_uuid(), 'user_id', m.id, 'user_name', m.name,
                      'text', 'resume ' || n.i,
                      'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                    FROM numbered n JOIN members m ON m.chat_id = n.chat_id AND m.user_id = $3
                    RETURNING chat_id, seq)
     UPDATE chats c SET event_seq = a.seq FROM (SELECT chat_id, max(seq) AS seq FROM added GROUP BY chat_id) a
     WHERE c.id = a.chat_id`,
    [chatIds, RESUME_EVENTS, user.id],
  );
  const commits = async () =>
    Number(
      (
        await ctx.db.query<{ n: string }>(
          'SELECT sum(xact_commit)::bigint AS n FROM pg_stat_database WHERE datname = $1',
          [new URL(BENCH_DATABASE_URL).pathname.slice(1)],
        )
      ).rows[0]!.n,
    );
  // pg_stat_database is updated when a backend reports (at most every second or so): settle first.
  await sleep(1500);
  const commitsBefore = await commits();
  const replayedBefore = await metric(api.url, 'messenger_events_replayed_total');
  let received = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const started = performance.now();
  const stream = await openStream(
    `${api.url}/v1/events`,
    { ...auth(user.token), 'Last-Event-ID': since },
    (text) => {
      if (text.startsWith('resume ') && ++received === RESUME_EVENTS) done();
    },
  );
  if (stream.status !== 200) throw new Error(`resume: the stream answered ${stream.status}`);
  await Promise.race([all, sleep(60_000)]);
  const seconds = (performance.now() - started) / 1000;
  stream.close();
  const replayed = (await metric(api.url, 'messenger_events_replayed_total')) - replayedBefore;
  await sleep(1500);
  const commitsAfter = await commits();
  if (received < RESUME_EVENTS) throw new Error(`resume: ${received} of ${RESUME_EVENTS} events in 60 s`);
  figures.resume = {
    chats: Number(mine[0]?.chats ?? 0),
    idChars: since.length,
    events: received,
    seconds,
    // Every transaction of the bench database meanwhile: the stream's, the bench's two reads of the
    // counter, and whatever the idle consumer and pool did.
    commits: commitsAfter - commitsBefore,
    replayed,
    batches: Math.floor(replayed / 1000) + 1,
  };
}

/** CPU microseconds per event delivered to a stream (every stream gets every message). */
function microsPerFrame(seconds: number, f: { sent: number; streams: number }): string {
  return ((seconds * 1e6) / (f.sent * f.streams)).toFixed(2);
}

function report(ctx: Context): PhaseReport {
  const rows: Row[] = [];
  const targets: Target[] = [];
  const { idle: i, fanout: f, resume: r } = figures;
  if (i) {
    rows.push({
      scenario: `${i.streams.toLocaleString('en-US')} idle SSE streams, one API: /ping`,
      p50: i.pingOpen.p50,
      p95: i.pingOpen.p95,
      p99: i.pingOpen.p99,
      rssMb: i.rssOpenMb,
      ratio: `${i.kbPerStream.toFixed(1)} KB RSS/stream`,
    });
    targets.push({
      target: `${i.streams.toLocaleString('en-US')} idle SSE streams on one API process: RSS per stream, event-loop lag`,
      measured:
        `RSS ${Math.round(i.rssBeforeMb)} → ${Math.round(i.rssOpenMb)} MB = ${i.kbPerStream.toFixed(1)} KB/stream; ` +
        `/ping p50 ${formatMs(i.pingBefore.p50)} → ${formatMs(i.pingOpen.p50)} ms, p99 ${formatMs(i.pingBefore.p99)} → ` +
        `${formatMs(i.pingOpen.p99)} ms; nodejs_eventloop_lag ${formatMs(i.lagBeforeMs)} → ${formatMs(i.lagOpenMs)} ms`,
      met: true,
    });
  }
  if (f) {
    rows.push({
      scenario: `fan-out: ${FANOUT_RATE} msg/s to ${f.streams} streams, 2 instances (send→receive)`,
      rps: f.sent / f.sendSeconds,
      p50: f.latency.p50,
      p95: f.latency.p95,
      p99: f.latency.p99,
      errors: f.expected - f.received,
      target: 'p99 < 100 ms',
      met: f.latency.p99 < 100,
    });
    targets.push({
      target: `fan-out to ${f.streams} streams over 2 instances at ${FANOUT_RATE} msg/s: send→receive p99 < 100 ms`,
      measured:
        `p50 ${formatMs(f.latency.p50)} ms, p99 ${formatMs(f.latency.p99)} ms; ${f.received.toLocaleString('en-US')} of ` +
        `${f.expected.toLocaleString('en-US')} deliveries to the ${f.probes} timed streams; ${f.failures} of ` +
        `${f.sent + f.failures} sends failed; events read back from the database by the instances: ` +
        `${f.filled.toLocaleString('en-US')} once per chat (gaps the bus left), ${f.replayed.toLocaleString('en-US')} per stream; ` +
        `the sends answered in p50 ${formatMs(f.sendLatency.p50)} ms, p99 ${formatMs(f.sendLatency.p99)} ms; ` +
        `event-loop delay p99: the bench (sending) ${formatMs(f.loops.benchP99)} ms, the APIs ${formatMs(f.loops.apiP99)} and ` +
        `${formatMs(f.loops.api2P99)} ms; ` +
        `CPU per event and stream (the two instances; the ${READER_PROCESSES} processes reading them): ` +
        `${microsPerFrame(f.cpu.api + f.cpu.api2, f)} µs; ${microsPerFrame(f.cpu.bench, f)} µs ` +
        `(${f.cpu.api.toFixed(1)} + ${f.cpu.api2.toFixed(1)} s; ${f.cpu.bench.toFixed(1)} s over ${f.cpu.windowSeconds.toFixed(1)} s)`,
      met: f.latency.p99 < 100 && f.received === f.expected,
    });
    const open = scenario(ctx, 'sendStreamsOpen');
    const none = scenario(ctx, 'sendNoStreams');
    const share = open.rps / none.rps;
    rows.push(
      httpRow(`send, ${f.streams} streams of the chat open`, open, {
        ratio: `${formatRatio(share)} no streams`,
        target: '≥ 0.80× no streams',
        met: share >= 0.8,
      }),
      httpRow('send, no streams open', none),
    );
    targets.push({
      target: `send rate with ${f.streams} streams of the chat open ≥ 80% of with none`,
      measured: `${formatRps(open.rps)} vs ${formatRps(none.rps)}/s = ${(share * 100).toFixed(0)}%`,
      met: share >= 0.8,
    });
  }
  if (r) {
    rows.push({
      scenario: `resume: ${r.events.toLocaleString('en-US')} missed events, 3 chats of ${r.chats.toLocaleString('en-US')}`,
      p50: r.seconds * 1000,
    });
    targets.push({
      target: `resume ${r.events.toLocaleString('en-US')} missed events (Last-Event-ID): time and queries`,
      measured:
        `${r.seconds.toFixed(2)} s; ${r.replayed.toLocaleString('en-US')} replayed in ${r.batches} batch reads; ` +
        `${r.commits} transactions on the bench database meanwhile; resumed from an id of ${r.idChars} characters ` +
        `(the user is in ${r.chats.toLocaleString('en-US')} chats)`,
      met: true,
    });
  }
  return {
    rows,
    targets,
    notes: [
      'Events: the bench API runs with HTTP_MAX_CONNECTIONS_PER_IP=0 (no per-IP cap: every stream comes from ' +
        '127.0.0.1) and STREAMS_PER_USER=10000; the idle streams are spread over the 64 bench users. Event-loop lag: ' +
        '/ping round trips from the bench (40, 50 ms apart) before and while the streams are open, and prom-client’s ' +
        'nodejs_eventloop_lag_seconds gauge. RSS per stream: VmRSS delta of the API process after holding them 5 s. ' +
        'The streams’ memory stays out of the API peak RSS of the other scenarios.',
      'Fan-out: the chat with most members; 1,000 streams over its members (a member may hold several when the ' +
        'chat has fewer), alternately on the run’s API and a second API process sharing Postgres and Redis; sends ' +
        'alternate between the two. Latency: from just before the POST to the event’s arrival on each stream, in ' +
        'the bench process, on 1 stream in 10 (the other 900 are read and discarded, to spare the bench’s CPU on the ' +
        'same 2 cores). The send-rate pair: one sender ' +
        `on the first instance, ${ctx.settings.connections} connections, with the 1,000 streams open, then closed.`,
      'Resume: 10,000 message events written straight into the event log of 3 of a user’s chats (the payload the ' +
        'send writes), then a stream opened with a Last-Event-ID from before them. Batch reads = replayed / 1,000 ' +
        '(the replay batch) + 1; transactions = the xact_commit delta of pg_stat_database for the bench database, ' +
        'which includes the stream’s own opening reads (session, chats) and anything else on that database.',
      `Opening: a stream refused with 503 (or 408) while a burst of ${OPEN_BATCH} opens (the pool busy with ` +
        `their first reads) is opened again, up to ${OPEN_ATTEMPTS} tries: ${reopened} retried in this run.`,
    ],
    json: { events: figures },
  };
}

/** Issue 12's real-time event benchmarks: idle streams, fan-out over two instances, resume. */
export function eventsPhase(): Phase {
  return {
    name: 'events',
    steps: (
      [
        ['idle', idle],
        ['fanout', fanout],
        ['resume', resume],
      ] as const
    )
      .filter(([name]) => STEPS.includes(name))
      .map(([, run]) => ({ needs: 'full' as const, run })),
    report,
  };
}
