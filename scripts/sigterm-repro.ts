/**
 * Starts the API (or the consumer) as a process on the backends of the environment and stops it with
 * SIGTERM at varied points of its start, N times each; prints how many runs did not exit 0 with a
 * quiet stderr. Usage: DATABASE_URL=… REDIS_URL=… AMQP_URL=… npx tsx scripts/sigterm-repro.ts [N] [role]
 */
import { Broker } from '../test/support/search-helpers.js';
import { launch, type Launched, type LogLine } from '../test/support/spawn.js';

const runs = Number(process.argv[2] ?? 10);
const role = process.argv[3] ?? 'api';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isListening = (line: LogLine) => typeof line.msg === 'string' && line.msg.startsWith('listening on ');

/** Hits /v1 until it stops answering 503 (or `untilReady` is false: returns at the first 503). */
async function poke(app: Launched, untilReady: boolean): Promise<void> {
  const port = (await app.waitForLog(isListening)).port as number;
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chats/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'hello' }),
    }).catch(() => undefined);
    if (!untilReady && res?.status === 503) return;
    if (untilReady && res && res.status !== 503) return;
    await sleep(20);
  }
}

const points: Record<string, (app: Launched) => Promise<unknown>> = {
  'random 0-2500 ms after spawn': () => sleep(Math.random() * 2500),
  'first log line': (app) => app.waitForLog(() => true),
  ...(role === 'api'
    ? {
        listening: (app: Launched) => app.waitForLog(isListening),
        'first /v1 503': (app: Launched) => poke(app, false),
        'ready, after a search': (app: Launched) => poke(app, true),
      }
    : { 'consumer started': (app: Launched) => app.waitForLog((line) => line.msg === 'consumer started') }),
};

let failed = 0;
for (const [name, reach] of Object.entries(points)) {
  let bad = 0;
  let early = 0;
  for (let i = 0; i < runs; i++) {
    const app = launch({ AUTH_DISABLED: 'true', SEARCH_QUEUE: 'test.sigterm.repro' }, role);
    await reach(app).catch(() => undefined);
    app.child.kill('SIGTERM');
    const timer = setTimeout(() => app.child.kill('SIGKILL'), 20_000);
    const exit = await app.exited;
    clearTimeout(timer);
    const stderr = app.stderr();
    if (exit.signal === 'SIGTERM' && !app.lines.length && !stderr) {
      // Before main.ts ran (still loading): the default action, with nothing opened yet.
      early++;
    } else if (exit.code !== 0 || stderr.trim()) {
      bad++;
      const problems = app.logs().filter((line) => line.level >= 50);
      process.stdout.write(
        `  [${name}] run ${i}: code ${exit.code} signal ${exit.signal}\n    stderr: ${stderr.slice(0, 600)}\n    errors: ${JSON.stringify(problems).slice(0, 600)}\n`,
      );
    }
  }
  failed += bad;
  process.stdout.write(
    `${role}: SIGTERM at ${name}: ${bad}/${runs} not clean, ${early} killed by the signal before the first log line\n`,
  );
}
process.stdout.write(`${role}: total ${failed} not clean\n`);
if (process.env.AMQP_URL) await Broker.deleteQueues(process.env.AMQP_URL, ['test.sigterm.repro']);
