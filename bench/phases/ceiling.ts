import fs from 'node:fs';
import path from 'node:path';
import { presentHistoryPage } from '../../src/modules/messages/present.js';
import type { HistoryRow } from '../../src/modules/messages/repository.js';
import { http } from '../lib/load.js';
import { freePort, LOG_DIR, startService, waitFor } from '../lib/services.js';
import { MESSAGE_STATEMENTS, native } from '../lib/sql.js';
import { SHALLOW } from './history.js';
import { httpRow, vsKoa, type Context, type Phase } from './phase.js';

/** The page the cached history scenario reads, built here with the API's own history SQL: its file. */
async function writeCachedPage(ctx: Context): Promise<string> {
  const { historyPage } = MESSAGE_STATEMENTS;
  const limit = ctx.settings.pageLimit;
  const chatId = ctx.fx.bigChatId;
  const afterSeq = ctx.fx.bigChatSeqs[SHALLOW - 1]!;
  const { text, values } = native(
    historyPage.sql,
    historyPage.bindings({ chatId, afterSeq, limit: limit + 1 }),
  );
  const { rows } = await ctx.db.query<HistoryRow>(text, values);
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const pageFile = path.join(LOG_DIR, 'page.json');
  fs.writeFileSync(pageFile, JSON.stringify(presentHistoryPage(rows, limit)));
  return pageFile;
}

/**
 * The ceilings: bare Koa on the same machine answering `{}` and answering the very page the cached
 * history scenario reads; then `GET /ping` through the whole API.
 */
export function ceilingPhase(): Phase {
  let pageBytes = 0;
  const koaCeilings = async (ctx: Context) => {
    const pageFile = await writeCachedPage(ctx);
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
      const watched = { koa: koa.pid };
      ctx.measured.koa = (await http('bare Koa {}', { url: `${url}/` }, ctx.load, watched)).measured;
      ctx.measured.koaPage = (
        await http('bare Koa, same page', { url: `${url}/page` }, ctx.load, watched)
      ).measured;
    } finally {
      await koa.stop();
    }
  };
  const page = () => `${(pageBytes / 1024).toFixed(1)} KB`;
  return {
    name: 'ceiling',
    steps: [
      { needs: 'nothing', run: koaCeilings },
      {
        needs: 'full',
        run: async (ctx, api) => {
          const ping = await http('GET /ping', { url: `${api.url}/ping` }, ctx.load, api.watched);
          ctx.measured.ping = ctx.peaks.keep(ping.measured);
        },
      },
    ],
    report: (ctx) => ({
      rows: [
        httpRow('bare Koa `{}` (ceiling)', ctx.measured.koa!, { rssMb: undefined, ratio: '1.00× (ceiling)' }),
        httpRow(
          `bare Koa, the same ${ctx.settings.pageLimit}-message page (${page()})`,
          ctx.measured.koaPage!,
          {
            rssMb: undefined,
            ratio: vsKoa(ctx, ctx.measured.koaPage!),
          },
        ),
        httpRow('`GET /ping`', ctx.measured.ping!, { ratio: vsKoa(ctx, ctx.measured.ping!) }),
      ],
      targets: [],
      notes: [
        `The same-page Koa row serves the cached scenario's page (${page()} of JSON) from ` +
          'an object serialized per request: the ceiling for that payload, shown for reference.',
      ],
    }),
  };
}
