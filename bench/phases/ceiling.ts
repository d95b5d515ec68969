import fs from 'node:fs';
import path from 'node:path';
import { auth, type Deployment } from '../lib/api.js';
import { BENCH_DATABASE_URL } from '../lib/db.js';
import { http, pgLoop, type Measured } from '../lib/load.js';
import { formatRatio, formatRps, type Row, type Target } from '../lib/report.js';
import { freePort, LOG_DIR, startService, waitFor } from '../lib/services.js';
import { CHAT_STATEMENTS, MESSAGE_STATEMENTS } from '../lib/sql.js';
import { CHAT_LIST_LIMIT, koaScenario, READS, readPath, SHALLOW, walkToPage, type Read } from './history.js';
import { httpRow, vsKoa, type Context, type Phase } from './phase.js';

/** The arguments of the history page the uncached scenario reads at depth SHALLOW, for its reader. */
function shallowPageArgs(ctx: Context) {
  return {
    viewer: ctx.fx.users[0]!.id,
    chatId: ctx.fx.bigChatId,
    afterSeq: ctx.fx.bigChatSeqs[SHALLOW - 1]!,
    // As the API asks: one more than the page shows, to know whether more follow.
    limit: ctx.settings.pageLimit + 1,
  };
}

/**
 * The straight-SELECT ceilings: the repository's statements for the uncached history page (depth
 * SHALLOW), the newest page and the chat list, through pg clients, prepared, back to back. The
 * arguments are those of the API scenarios they bound (the same reader, chat and page size).
 */
async function selectCeilings(ctx: Context): Promise<void> {
  const { historyPage, olderPage } = MESSAGE_STATEMENTS;
  const reader = ctx.fx.users[0]!.id;
  const limit = ctx.settings.pageLimit + 1;
  const loop = (label: string, statement: { name: string; text: string }, values: unknown[]) =>
    pgLoop(label, BENCH_DATABASE_URL, statement, () => values, ctx.load);
  const page = historyPage.values(shallowPageArgs(ctx));
  ctx.measured.pageSelect = (await loop('history page SELECT (pg)', historyPage, page)).measured;
  const newest = olderPage.values({ viewer: reader, chatId: ctx.fx.bigChatId, beforeSeq: null, limit });
  ctx.measured.newestSelect = (await loop('newest page SELECT (pg)', olderPage, newest)).measured;
  const { myChats } = CHAT_STATEMENTS;
  const chats = myChats.values({
    userId: reader,
    afterAt: null,
    afterChat: null,
    limit: CHAT_LIST_LIMIT + 1,
  });
  ctx.measured.chatsSelect = (await loop('chat list SELECT (pg)', myChats, chats)).measured;
}

/** The uncached API scenarios each straight SELECT bounds (measured by the history and chat list steps). */
const SELECT_BOUNDS = [
  { ceiling: 'pageSelect', api: 'shallow', what: `uncached history page (depth ${SHALLOW})` },
  { ceiling: 'newestSelect', api: 'newestUncached', what: 'uncached newest page (`anchor=newest`)' },
  { ceiling: 'chatsSelect', api: 'chatsUncached', what: 'uncached chat list (`GET /v1/chats`)' },
] as const;

const SELECT_SHARE = 0.7;

/** The straight-SELECT rows, and each uncached API scenario against its ceiling when it ran. */
function selectReport(ctx: Context): { rows: Row[]; targets: Target[]; notes: string[] } {
  const rows: Row[] = [];
  const targets: Target[] = [];
  const missing: string[] = [];
  const labels = {
    pageSelect: `history page via pg, prepared, depth ${SHALLOW} (ceiling)`,
    newestSelect: 'newest page via pg, prepared (ceiling)',
    chatsSelect: 'chat list via pg, prepared (ceiling)',
  };
  for (const { ceiling, api, what } of SELECT_BOUNDS) {
    const bound = ctx.measured[ceiling];
    if (!bound) continue;
    rows.push(httpRow(labels[ceiling], bound, { rssMb: undefined, ratio: '1.00× (ceiling)' }));
    const served: Measured | undefined = ctx.measured[api];
    if (!served) {
      missing.push(`\`${api}\``);
      continue;
    }
    const share = served.rps / bound.rps;
    targets.push({
      target: `${what} ≥ ${SELECT_SHARE * 100}% of its straight SELECT`,
      measured: `${formatRps(served.rps)} vs ${formatRps(bound.rps)}/s = ${(share * 100).toFixed(0)}% (${formatRatio(share)})`,
      met: share >= SELECT_SHARE,
    });
  }
  const notes = rows.length
    ? [
        `Straight SELECT ceilings: the repository's statement (membership check included, as the API runs it) ` +
          `through ${ctx.settings.connections} pg clients, each statement prepared once per client, with the ` +
          'arguments of the uncached API scenario it bounds (same reader, chat and page size).',
      ]
    : [];
  if (missing.length) notes.push(`Not compared with its straight SELECT (not run): ${missing.join(', ')}.`);
  return { rows, targets, notes };
}

/**
 * The payloads the cached scenarios serve (the page at depth SHALLOW, the newest page, the reader's
 * chat list), as the API answers them, each in `<read>.json` of a new directory.
 */
async function writePayloads(
  ctx: Context,
  api: Deployment,
): Promise<{ dir: string; bytes: Record<Read, number> }> {
  const token = ctx.fx.users[0]!.token;
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const dir = fs.mkdtempSync(path.join(LOG_DIR, 'payloads-'));
  await walkToPage(ctx, api, token);
  const bytes = {} as Record<Read, number>;
  for (const read of READS) {
    const response = await fetch(`${api.url}${readPath(ctx, read)}`, { headers: auth(token) });
    if (response.status !== 200) throw new Error(`${read} answered ${response.status}`);
    const text = await response.text();
    fs.writeFileSync(path.join(dir, `${read}.json`), text);
    bytes[read] = Buffer.byteLength(text);
  }
  return { dir, bytes };
}

/**
 * The ceilings: bare Koa on the same machine answering `{}` and answering each payload the cached
 * scenarios read (the API idle meanwhile); then `GET /ping` through the whole API.
 */
export function ceilingPhase(): Phase {
  let bytes: Record<Read, number> | undefined;
  const koaCeilings = async (ctx: Context, api: Deployment) => {
    const payloads = await writePayloads(ctx, api);
    bytes = payloads.bytes;
    const port = await freePort();
    const koa = startService('ceiling-koa', ['--import', 'tsx', path.join('bench', 'ceiling-koa.ts')], {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PAGE_DIR: payloads.dir,
    });
    try {
      await waitFor(koa, `http://127.0.0.1:${port}/`);
      const url = `http://127.0.0.1:${port}`;
      const watched = { koa: koa.pid };
      ctx.measured.koa = (await http('bare Koa {}', { url: `${url}/` }, ctx.load, watched)).measured;
      for (const read of READS) {
        const label = `bare Koa, same ${read} payload`;
        ctx.measured[koaScenario(read)] = (
          await http(label, { url: `${url}/${read}` }, ctx.load, watched)
        ).measured;
      }
    } finally {
      await koa.stop();
      fs.rmSync(payloads.dir, { recursive: true, force: true });
    }
  };
  const size = (read: Read) => `${((bytes?.[read] ?? 0) / 1024).toFixed(1)} KB`;
  const payloadLabel: Record<Read, string> = {
    page: 'history page',
    newest: 'newest page',
    chats: 'chat list',
  };
  return {
    name: 'ceiling',
    steps: [
      { needs: 'nothing', run: selectCeilings },
      { needs: 'full', run: koaCeilings },
      {
        needs: 'full',
        run: async (ctx, api) => {
          const ping = await http('GET /ping', { url: `${api.url}/ping` }, ctx.load, api.watched);
          ctx.measured.ping = ctx.peaks.keep(ping.measured);
        },
      },
    ],
    report: (ctx) => {
      const selects = selectReport(ctx);
      return {
        rows: [
          httpRow('bare Koa `{}` (ceiling)', ctx.measured.koa!, {
            rssMb: undefined,
            ratio: '1.00× (ceiling)',
          }),
          ...READS.map((read) =>
            httpRow(
              `bare Koa, the same ${payloadLabel[read]} (${size(read)})`,
              ctx.measured[koaScenario(read)]!,
              {
                rssMb: undefined,
                ratio: vsKoa(ctx, ctx.measured[koaScenario(read)]!),
              },
            ),
          ),
          httpRow('`GET /ping`', ctx.measured.ping!, { ratio: vsKoa(ctx, ctx.measured.ping!) }),
          ...selects.rows,
        ],
        targets: selects.targets,
        notes: [
          'The same-payload Koa rows serve what the cached scenarios read (the JSON the API answered, ' +
            'parsed once) from an object serialized per request: the ceiling for each payload.',
          ...selects.notes,
        ],
      };
    },
  };
}
