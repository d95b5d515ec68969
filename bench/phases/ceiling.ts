import fs from 'node:fs';
import path from 'node:path';
import { auth, type Deployment } from '../lib/api.js';
import { http } from '../lib/load.js';
import { freePort, LOG_DIR, startService, waitFor } from '../lib/services.js';
import { koaScenario, READS, readPath, walkToPage, type Read } from './history.js';
import { httpRow, vsKoa, type Context, type Phase } from './phase.js';

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
      { needs: 'full', run: koaCeilings },
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
      ],
      targets: [],
      notes: [
        'The same-payload Koa rows serve what the cached scenarios read (the JSON the API answered, ' +
          'parsed once) from an object serialized per request: the ceiling for each payload.',
      ],
    }),
  };
}
