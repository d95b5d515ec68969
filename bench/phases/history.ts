import type autocannon from 'autocannon';
import { encodeCursor } from '../../src/modules/messages/cursor.js';
import { APPS_UNCACHED, auth, probeCache, type Deployment } from '../lib/api.js';
import { http, merge, type Measured } from '../lib/load.js';
import { formatMs, formatRatio, formatRps, type Row, type Target } from '../lib/report.js';
import { prng } from '../lib/text.js';
import { httpRow, scenario, vsKoa, type Context, type Phase, type PhaseReport } from './phase.js';

const DEEP = 200_000;
export const SHALLOW = 100;
/** Chats per chat-list page (a phone screen and a bit, as in the client phase). */
export const CHAT_LIST_LIMIT = 20;
/** What a cached scenario must reach, as a share of bare Koa serving the same payload, and its p99. */
const CACHED_SHARE = 0.6;
const CACHED_P99_MS = 5;

/** Pages start after any of these many of the big chat's messages. */
const pageable = (ctx: Context) => ctx.fx.bigChatSeqs.length - ctx.settings.pageLimit;
const deepDepth = (ctx: Context) => Math.min(DEEP, pageable(ctx));

/** The big chat's page after its first `depth` messages. */
export function historyPath(ctx: Context, depth: number): string {
  const from = encodeCursor(ctx.fx.bigChatSeqs[depth - 1]!);
  return `/v1/chats/${ctx.fx.bigChatId}/messages?limit=${ctx.settings.pageLimit}&from=${from}`;
}

/** The three reads a client repeats, each measured cached and uncached against bare Koa. */
export const READS = ['page', 'newest', 'chats'] as const;
export type Read = (typeof READS)[number];

/** The path of each read: the page at depth SHALLOW, the newest page, the reader's chat list. */
export function readPath(ctx: Context, read: Read): string {
  if (read === 'page') return historyPath(ctx, SHALLOW);
  if (read === 'newest')
    return `/v1/chats/${ctx.fx.bigChatId}/messages?limit=${ctx.settings.pageLimit}&anchor=newest`;
  return `/v1/chats?limit=${CHAT_LIST_LIMIT}`;
}

/**
 * Reads the big chat from its first page up to depth SHALLOW by following `next`, the way a client
 * gets there: the cache keeps the pages the server led to (a hand-made cursor is never cached).
 */
export async function walkToPage(ctx: Context, api: Deployment, token: string): Promise<void> {
  const target = historyPath(ctx, SHALLOW);
  let path = `/v1/chats/${ctx.fx.bigChatId}/messages?limit=${ctx.settings.pageLimit}`;
  for (let hop = 0; hop <= SHALLOW / ctx.settings.pageLimit && path !== target; hop++) {
    const response = await fetch(`${api.url}${path}`, { headers: auth(token) });
    const page = (await response.json()) as { next?: { iterator: string } };
    if (!page.next) break;
    path = `/v1/chats/${ctx.fx.bigChatId}/messages?limit=${ctx.settings.pageLimit}&from=${page.next.iterator}`;
  }
  if (path !== target) throw new Error(`following next from the first page did not lead to depth ${SHALLOW}`);
}

/** Scenario names in ctx.measured: cached, bare Koa with the same payload, uncached. */
const NAMES: Record<Read, { cached: string; koa: string; uncached: string; label: string }> = {
  page: { cached: 'cached', koa: 'koaPage', uncached: 'shallow', label: `history page, depth ${SHALLOW}` },
  newest: { cached: 'newestCached', koa: 'koaNewest', uncached: 'newestUncached', label: 'newest page' },
  chats: {
    cached: 'chatsCached',
    koa: 'koaChats',
    uncached: 'chatsUncached',
    label: `chat list (limit ${CHAT_LIST_LIMIT})`,
  },
};
export const koaScenario = (read: Read) => NAMES[read].koa;

/** The API with the cache module: one page (or list), hot. */
async function cached(ctx: Context, api: Deployment): Promise<void> {
  const reader = ctx.fx.users[0]!;
  await walkToPage(ctx, api, reader.token);
  for (const read of READS) {
    const url = `${api.url}${readPath(ctx, read)}`;
    const xCache = await probeCache(url, reader.token);
    ctx.notes.push(`Cached ${NAMES[read].label} probe before the run: \`X-Cache: ${xCache}\` (third read).`);
    const run = await http(
      `${NAMES[read].label}, cached`,
      { url, headers: auth(reader.token) },
      ctx.load,
      api.watched,
    );
    ctx.measured[NAMES[read].cached] = ctx.peaks.keep(run.measured);
  }
}

/** Without the cache module: every history page, session and membership from Postgres. */
async function uncached(ctx: Context, api: Deployment): Promise<void> {
  const reader = ctx.fx.users[0]!;
  const xCache = await probeCache(`${api.url}${historyPath(ctx, SHALLOW)}`, reader.token);
  ctx.notes.push(`Uncached runs: APPS=${APPS_UNCACHED}; page probe \`X-Cache: ${xCache}\`.`);
  const random = prng(11);
  const pages = pageable(ctx);
  const request: autocannon.Request = {
    method: 'GET',
    setupRequest: (r) => ({ ...r, path: historyPath(ctx, 1 + Math.floor(random() * pages)) }),
  };
  const options = { url: api.url, headers: auth(reader.token), requests: [request] };
  const run = await http('history, uncached, random depth', options, ctx.load, api.watched);
  ctx.measured.random = ctx.peaks.keep(run.measured);
  await shallowAndDeep(ctx, api);
  for (const read of ['newest', 'chats'] as const) {
    const url = `${api.url}${readPath(ctx, read)}`;
    const measured = await http(
      `${NAMES[read].label}, uncached`,
      { url, headers: auth(reader.token) },
      ctx.load,
      api.watched,
    );
    ctx.measured[NAMES[read].uncached] = ctx.peaks.keep(measured.measured);
  }
}

/** Depth SHALLOW and the deep depth alternate in halves (A B A B), so drift hits both alike. */
async function shallowAndDeep(ctx: Context, api: Deployment): Promise<void> {
  const token = ctx.fx.users[0]!.token;
  const deep = deepDepth(ctx);
  const half = ctx.settings.duration / 2;
  const shallowRuns = [];
  const deepRuns = [];
  for (let round = 0; round < 2; round++) {
    const load = { ...ctx.load, warmup: round === 0 ? ctx.load.warmup : 0 };
    const at = (depth: number) => ({ url: `${api.url}${historyPath(ctx, depth)}`, headers: auth(token) });
    shallowRuns.push(await http(`history, uncached, depth ${SHALLOW}`, at(SHALLOW), load, api.watched, half));
    const label = `history, uncached, depth ${deep.toLocaleString('en-US')}`;
    deepRuns.push(await http(label, at(deep), load, api.watched, half));
  }
  ctx.measured.shallow = ctx.peaks.keep(merge(shallowRuns));
  ctx.measured.deep = ctx.peaks.keep(merge(deepRuns));
}

/** A cached read against bare Koa serving its payload: its row and its two targets. */
function cachedRead(ctx: Context, read: Read): { row: Row; targets: Target[] } {
  const { cached: name, koa: koaName, label } = NAMES[read];
  const run = scenario(ctx, name);
  const koa = scenario(ctx, koaName);
  const share = run.rps / koa.rps;
  const fast = run.latency.p99 < CACHED_P99_MS;
  return {
    row: httpRow(`${label}, cached (hot)`, run, {
      ratio: `${formatRatio(share)} same-payload Koa; ${vsKoa(ctx, run)}`,
      target: `≥ ${CACHED_SHARE.toFixed(2)}× same-payload Koa, p99 < ${CACHED_P99_MS} ms`,
      met: share >= CACHED_SHARE && fast,
    }),
    targets: [
      {
        target: `cached ${label} ≥ ${CACHED_SHARE * 100}% of bare Koa serving the same payload`,
        measured: `${formatRps(run.rps)} vs ${formatRps(koa.rps)} req/s = ${(share * 100).toFixed(0)}%`,
        met: share >= CACHED_SHARE,
      },
      {
        target: `cached ${label} p99 < ${CACHED_P99_MS} ms at ${ctx.settings.connections} connections`,
        measured: `p99 ${formatMs(run.latency.p99)} ms`,
        met: fast,
      },
    ],
  };
}

function report(ctx: Context): PhaseReport {
  const [random, shallow, deep] = ['random', 'shallow', 'deep'].map((name) => scenario(ctx, name)) as [
    Measured,
    Measured,
    Measured,
  ];
  const depthCost = shallow.rps / deep.rps;
  const depthP50 = deep.latency.p50 / shallow.latency.p50;
  const deepLabel = deepDepth(ctx).toLocaleString('en-US');
  const reads = READS.map((read) => cachedRead(ctx, read));
  const targets: Target[] = [
    ...reads.flatMap((read) => read.targets),
    {
      target: `uncached page at depth ${deepLabel} within 1.3× of depth ${SHALLOW}`,
      measured:
        `${formatRps(deep.rps)} vs ${formatRps(shallow.rps)} req/s = ${formatRatio(depthCost)} the cost; ` +
        `p50 ${formatMs(deep.latency.p50)} vs ${formatMs(shallow.latency.p50)} ms = ${formatRatio(depthP50)}`,
      met: depthCost <= 1.3,
    },
  ];
  const uncachedRow = (read: Read) =>
    httpRow(`${NAMES[read].label}, uncached`, scenario(ctx, NAMES[read].uncached), {
      ratio: vsKoa(ctx, scenario(ctx, NAMES[read].uncached)),
    });
  return {
    rows: [
      ...reads.map((read) => read.row),
      httpRow('history page, uncached, random depth', random, { ratio: vsKoa(ctx, random) }),
      httpRow(`history page, uncached, depth ${SHALLOW}`, shallow, { ratio: vsKoa(ctx, shallow) }),
      httpRow(`history page, uncached, depth ${deepLabel}`, deep, {
        ratio: `${formatRatio(depthCost)} depth ${SHALLOW} (cost)`,
        target: `≤ 1.30× depth ${SHALLOW}`,
        met: depthCost <= 1.3,
      }),
      uncachedRow('newest'),
      uncachedRow('chats'),
    ],
    targets,
    notes: [
      `Cached reads: the page at depth ${SHALLOW} (reached by following \`next\` from the first page, as a client does), ` +
        `the newest page of the big chat and the reader's chat list, each hot; "same-payload Koa" is bare Koa serving that very JSON.`,
      `Depth ${SHALLOW} vs ${deepLabel}: alternated in halves (A B A B); "cost" is req/s at depth ${SHALLOW} ÷ req/s at depth ${deepLabel}.`,
    ],
    settings: { deepDepth: deepDepth(ctx), shallowDepth: SHALLOW, chatListLimit: CHAT_LIST_LIMIT },
  };
}

/** History pages of the big chat and the chat list: cached (hot), and uncached. */
export function historyPhase(): Phase {
  return {
    name: 'history',
    steps: [
      { needs: 'full', run: cached },
      { needs: 'uncached', run: uncached },
    ],
    report,
  };
}
