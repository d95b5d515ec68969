import type autocannon from 'autocannon';
import { encodeCursor } from '../../src/modules/messages/cursor.js';
import { APPS_UNCACHED, auth, probeCache, type Deployment } from '../lib/api.js';
import { http, merge, type Measured } from '../lib/load.js';
import { formatMs, formatRatio, formatRps, type Target } from '../lib/report.js';
import { prng } from '../lib/text.js';
import { httpRow, scenario, vsKoa, type Context, type Phase, type PhaseReport } from './phase.js';

const DEEP = 200_000;
export const SHALLOW = 100;

/** Pages start after any of these many of the big chat's messages. */
const pageable = (ctx: Context) => ctx.fx.bigChatSeqs.length - ctx.settings.pageLimit;
const deepDepth = (ctx: Context) => Math.min(DEEP, pageable(ctx));

/** The big chat's page after its first `depth` messages. */
export function historyPath(ctx: Context, depth: number): string {
  const from = encodeCursor(ctx.fx.bigChatSeqs[depth - 1]!);
  return `/v1/chats/${ctx.fx.bigChatId}/messages?limit=${ctx.settings.pageLimit}&from=${from}`;
}

/** The API with the cache module: one chat, one page, hot. */
async function cached(ctx: Context, api: Deployment): Promise<void> {
  const reader = ctx.fx.users[0]!;
  const url = `${api.url}${historyPath(ctx, SHALLOW)}`;
  const xCache = await probeCache(url, reader.token);
  ctx.notes.push(`Cached page probe before the run: \`X-Cache: ${xCache}\` (third read of the page).`);
  const run = await http('history, cached', { url, headers: auth(reader.token) }, ctx.load, api.watched);
  ctx.measured.cached = ctx.peaks.keep(run.measured);
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

function report(ctx: Context): PhaseReport {
  const [koa, cachedRun, random, shallow, deep] = ['koa', 'cached', 'random', 'shallow', 'deep'].map((name) =>
    scenario(ctx, name),
  ) as [Measured, Measured, Measured, Measured, Measured];
  const koaPage = scenario(ctx, 'koaPage');
  const cachedShare = cachedRun.rps / koa.rps;
  const cachedMet = cachedShare >= 0.6 && cachedRun.latency.p99 < 10;
  const depthCost = shallow.rps / deep.rps;
  const depthP50 = deep.latency.p50 / shallow.latency.p50;
  const deepLabel = deepDepth(ctx).toLocaleString('en-US');
  const targets: Target[] = [
    {
      target: 'cached history page ≥ 60% of bare Koa req/s',
      measured: `${formatRps(cachedRun.rps)} vs ${formatRps(koa.rps)} req/s = ${(cachedShare * 100).toFixed(0)}%`,
      met: cachedShare >= 0.6,
    },
    {
      target: `cached history page p99 < 10 ms at ${ctx.settings.connections} connections`,
      measured: `p99 ${formatMs(cachedRun.latency.p99)} ms`,
      met: cachedRun.latency.p99 < 10,
    },
    {
      target: `uncached page at depth ${deepLabel} within 1.3× of depth ${SHALLOW}`,
      measured:
        `${formatRps(deep.rps)} vs ${formatRps(shallow.rps)} req/s = ${formatRatio(depthCost)} the cost; ` +
        `p50 ${formatMs(deep.latency.p50)} vs ${formatMs(shallow.latency.p50)} ms = ${formatRatio(depthP50)}`,
      met: depthCost <= 1.3,
    },
  ];
  return {
    rows: [
      httpRow('history page, cached (one chat, hot)', cachedRun, {
        ratio: `${vsKoa(ctx, cachedRun)}; ${formatRatio(cachedRun.rps / koaPage.rps)} same-page Koa`,
        target: '≥ 0.60× bare Koa, p99 < 10 ms',
        met: cachedMet,
      }),
      httpRow('history page, uncached, random depth', random, { ratio: vsKoa(ctx, random) }),
      httpRow(`history page, uncached, depth ${SHALLOW}`, shallow, { ratio: vsKoa(ctx, shallow) }),
      httpRow(`history page, uncached, depth ${deepLabel}`, deep, {
        ratio: `${formatRatio(depthCost)} depth ${SHALLOW} (cost)`,
        target: `≤ 1.30× depth ${SHALLOW}`,
        met: depthCost <= 1.3,
      }),
    ],
    targets,
    notes: [
      `Depth ${SHALLOW} vs ${deepLabel}: alternated in halves (A B A B); "cost" is req/s at depth ${SHALLOW} ÷ req/s at depth ${deepLabel}.`,
    ],
    settings: { deepDepth: deepDepth(ctx), shallowDepth: SHALLOW },
  };
}

/** History pages of the big chat: cached (hot), and uncached at a random, a shallow and a deep position. */
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
