import { randomUUID } from 'node:crypto';
import type autocannon from 'autocannon';
import { auth, type Deployment } from '../lib/api.js';
import { http, merge } from '../lib/load.js';
import { formatMs, formatRatio, formatRps, type Target } from '../lib/report.js';
import { historyPath, SHALLOW } from './history.js';
import { httpRow, scenario, type Context, type Phase, type PhaseReport } from './phase.js';

/** Chats per chat-list page (a phone screen and a bit). */
const CHAT_PAGE = 20;

/**
 * Two scenarios alternated in halves, A B then B A, so drift in the machine's load and the order
 * they run in hit both alike; each merged into one measurement under its name.
 */
async function alternated(
  ctx: Context,
  api: Deployment,
  scenarios: Record<string, { label: string; options: autocannon.Options }>,
): Promise<void> {
  const half = ctx.settings.duration / 2;
  const runs: Record<string, Parameters<typeof merge>[0]> = {};
  for (let round = 0; round < 2; round++) {
    const load = { ...ctx.load, warmup: round === 0 ? ctx.load.warmup : 0 };
    const order = Object.entries(scenarios);
    for (const [name, { label, options }] of round === 0 ? order : order.reverse()) {
      (runs[name] ??= []).push(await http(label, options, load, api.watched, half));
    }
  }
  for (const [name, measured] of Object.entries(runs)) ctx.measured[name] = ctx.peaks.keep(merge(measured));
}

/**
 * Without the cache: the chat list of a user in every seeded chat against a history page, and the
 * newest page of the big chat (every message behind it) against a page near its start.
 */
async function reads(ctx: Context, api: Deployment): Promise<void> {
  const reader = ctx.fx.users[0]!;
  const headers = auth(reader.token);
  const { rows } = await ctx.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM members WHERE user_id = $1 AND left_at IS NULL',
    [reader.id],
  );
  ctx.notes.push(`Chat list: ${reader.name} is in ${rows[0]!.n.toLocaleString('en-US')} chats.`);
  await alternated(ctx, api, {
    chatList: {
      label: `my chats, limit ${CHAT_PAGE}`,
      options: { url: `${api.url}/v1/chats?limit=${CHAT_PAGE}`, headers },
    },
    chatListPage: {
      label: `history page, depth ${SHALLOW}`,
      options: { url: `${api.url}${historyPath(ctx, SHALLOW)}`, headers },
    },
  });
  const newest = `/v1/chats/${ctx.fx.bigChatId}/messages?limit=${ctx.settings.pageLimit}&anchor=newest`;
  await alternated(ctx, api, {
    newest: { label: 'history, anchor=newest', options: { url: `${api.url}${newest}`, headers } },
    newestShallow: {
      label: `history, from depth ${SHALLOW}`,
      options: { url: `${api.url}${historyPath(ctx, SHALLOW)}`, headers },
    },
  });
}

/** Sends round-robin over the fixtures' (user, chat, member) triples, with a new key each or none. */
async function sends(ctx: Context, api: Deployment): Promise<void> {
  const request = (withKey: boolean): autocannon.Request => {
    let next = 0;
    return {
      method: 'POST',
      setupRequest: (r) => {
        const send = ctx.fx.sends[next % ctx.fx.sends.length]!;
        const text = ctx.fx.texts[next++ % ctx.fx.texts.length]!;
        return {
          ...r,
          path: `/v1/chats/${send.chatId}/messages?user_id=${send.memberId}`,
          headers: {
            ...auth(send.token),
            'Content-Type': 'application/json',
            ...(withKey ? { 'Idempotency-Key': randomUUID() } : {}),
          },
          body: JSON.stringify({ message: text }),
        };
      },
    };
  };
  await alternated(ctx, api, {
    plainSend: { label: 'send, no key', options: { url: api.url, requests: [request(false)] } },
    keyedSend: { label: 'send, Idempotency-Key', options: { url: api.url, requests: [request(true)] } },
  });
}

function report(ctx: Context): PhaseReport {
  const get = (name: string) => scenario(ctx, name);
  const [chatList, page] = [get('chatList'), get('chatListPage')];
  const [newest, shallow] = [get('newest'), get('newestShallow')];
  const [plain, keyed] = [get('plainSend'), get('keyedSend')];
  const bigChat = ctx.fx.bigChatSeqs.length.toLocaleString('en-US');
  const newestCost = shallow.rps / newest.rps;
  const keyedShare = keyed.rps / plain.rps;
  const listVsPage = `${formatRatio(chatList.rps / page.rps)} history page req/s, p99 ${formatRatio(chatList.latency.p99 / page.latency.p99)}`;
  const targets: Target[] = [
    {
      target: `chat list of a user in every chat: p99 and req/s against a history page`,
      measured:
        `${formatRps(chatList.rps)} vs ${formatRps(page.rps)} req/s; ` +
        `p99 ${formatMs(chatList.latency.p99)} vs ${formatMs(page.latency.p99)} ms`,
      met: true,
    },
    {
      target: `anchor=newest of a ${bigChat}-message chat within 1.3× of a page at depth ${SHALLOW}`,
      measured: `${formatRps(newest.rps)} vs ${formatRps(shallow.rps)} req/s = ${formatRatio(newestCost)} the cost`,
      met: newestCost <= 1.3,
    },
    {
      target: 'send with an Idempotency-Key ≥ 90% of send without',
      measured: `${formatRps(keyed.rps)} vs ${formatRps(plain.rps)}/s = ${(keyedShare * 100).toFixed(0)}%`,
      met: keyedShare >= 0.9,
    },
  ];
  return {
    rows: [
      httpRow(`my chats (limit ${CHAT_PAGE}), uncached`, chatList, { ratio: listVsPage }),
      httpRow(`history page, uncached, depth ${SHALLOW} (beside my chats)`, page),
      httpRow(`history, uncached, anchor=newest (depth ${bigChat})`, newest, {
        ratio: `${formatRatio(newestCost)} depth ${SHALLOW} (cost)`,
        target: `≤ 1.30× depth ${SHALLOW}`,
        met: newestCost <= 1.3,
      }),
      httpRow(`history, uncached, from depth ${SHALLOW} (beside anchor=newest)`, shallow),
      httpRow('send message, no key', plain),
      httpRow('send message, Idempotency-Key', keyed, {
        ratio: `${formatRatio(keyedShare)} without`,
        target: '≥ 0.90× without',
        met: keyedShare >= 0.9,
      }),
    ],
    targets,
    notes: [
      'Client needs: each pair (my chats / history page; anchor=newest / depth ' +
        `${SHALLOW}; send with / without a key) alternated in halves (A B B A) in one run; every keyed send a new key.`,
    ],
  };
}

/** What a messenger client opens: its chat list, the newest page of a long chat, and sends it may retry. */
export function clientPhase(): Phase {
  return {
    name: 'client',
    steps: [
      { needs: 'full', run: sends },
      { needs: 'uncached', run: reads },
    ],
    report,
  };
}
