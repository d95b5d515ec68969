import type autocannon from 'autocannon';
import { auth, type Deployment } from '../lib/api.js';
import { BENCH_DATABASE_URL } from '../lib/db.js';
import { http, pgLoop } from '../lib/load.js';
import { formatRatio, formatRps } from '../lib/report.js';
import { MESSAGE_STATEMENTS } from '../lib/sql.js';
import type { Send } from './seed.js';
import { httpRow, scenario, type Context, type Phase } from './phase.js';

/** The fixtures' (user, chat, member) triples and texts, round-robin, each call the next pair. */
function roundRobin(ctx: Context): () => { send: Send; text: string } {
  const { sends, texts } = ctx.fx;
  let next = 0;
  return () => ({ send: sends[next % sends.length]!, text: texts[next++ % texts.length]! });
}

const insertArgs = ({ send, text }: { send: Send; text: string }) => ({
  chatId: send.chatId,
  memberId: send.memberId,
  userId: send.userId,
  text,
  // As the API sends it: a deadline a little ahead (the check costs the same whatever it is).
  deadline: new Date(Date.now() + 1000),
});

/** The repository's INSERT through pg clients, prepared: the ceiling of the send. */
async function straightInsert(ctx: Context): Promise<void> {
  const { insertMessage } = MESSAGE_STATEMENTS;
  const next = roundRobin(ctx);
  const nextParams = () => insertMessage.values(insertArgs(next()));
  const run = await pgLoop('straight INSERT (pg)', BENCH_DATABASE_URL, insertMessage, nextParams, ctx.load);
  ctx.measured.insert = run.measured;
}

/** The API's send, round-robin over the same pairs. */
async function send(ctx: Context, api: Deployment): Promise<void> {
  const next = roundRobin(ctx);
  const request: autocannon.Request = {
    method: 'POST',
    setupRequest: (r) => {
      const { send, text } = next();
      return {
        ...r,
        path: `/v1/chats/${send.chatId}/messages?user_id=${send.memberId}`,
        headers: { ...auth(send.token), 'Content-Type': 'application/json' },
        body: JSON.stringify({ message: text }),
      };
    },
  };
  const run = await http('send message', { url: api.url, requests: [request] }, ctx.load, api.watched);
  ctx.measured.send = ctx.peaks.keep(run.measured);
}

const SEND_SHARE = 0.7;

/** Sending a message, against the straight INSERT ceiling. */
export function sendPhase(): Phase {
  return {
    name: 'send',
    steps: [
      { needs: 'full', run: straightInsert },
      { needs: 'full', run: send },
    ],
    report: (ctx) => {
      const insert = scenario(ctx, 'insert');
      const sent = scenario(ctx, 'send');
      const share = sent.rps / insert.rps;
      const met = share >= SEND_SHARE;
      return {
        rows: [
          httpRow('straight INSERT via pg, prepared (ceiling)', insert, { ratio: '1.00× (ceiling)' }),
          httpRow('send message', sent, {
            ratio: `${formatRatio(share)} straight INSERT`,
            target: `≥ ${formatRatio(SEND_SHARE)} straight INSERT`,
            met,
          }),
        ],
        targets: [
          {
            target: `send message ≥ ${SEND_SHARE * 100}% of the straight INSERT ceiling`,
            measured: `${formatRps(sent.rps)} vs ${formatRps(insert.rps)}/s = ${(share * 100).toFixed(0)}%`,
            met,
          },
        ],
        notes: [
          `Send and the straight INSERT: the same ${ctx.fx.sends.length} (user, chat, member) triples round-robin; the ` +
            `straight INSERT is the repository’s statement through ${ctx.settings.connections} pg clients, prepared once ` +
            'per client as the API prepares it. Rows they add are deleted afterwards.',
        ],
      };
    },
  };
}
