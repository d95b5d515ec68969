/**
 * `make bench` / `npm run bench -- [seed flags]`: seeds the bench database when it holds too little,
 * starts the built API (and a search consumer) on the local Postgres, Redis and RabbitMQ, runs the
 * phases below with autocannon and pg, and writes bench/results/latest.{md,json} (and the README's
 * table). `npm run bench -- --help` lists the settings.
 */
import { deploy, login, type Deployment, type DeploymentKind } from './lib/api.js';
import { pool } from './lib/db.js';
import { writeRun } from './lib/results.js';
import { SEED_FLAGS, seedArgs } from './lib/seeding.js';
import { loadSettings, readSettings } from './lib/settings.js';
import { ceilingPhase } from './phases/ceiling.js';
import { clientPhase } from './phases/client.js';
import { eventsPhase } from './phases/events.js';
import { historyPhase } from './phases/history.js';
import { Peaks, type Context, type Phase, type Step } from './phases/phase.js';
import { searchPhase } from './phases/search.js';
import { sendPhase } from './phases/send.js';
import { seedPhase } from './phases/seed.js';

/** In report order; a new phase is a file in phases/ and a line here. */
const ALL_PHASES: Phase[] = [
  ceilingPhase(),
  historyPhase(),
  sendPhase(),
  searchPhase(),
  clientPhase(),
  eventsPhase(),
];
/** BENCH_PHASES=client,send runs only those (their reports must not need another phase's scenarios). */
const PHASES = process.env.BENCH_PHASES
  ? ALL_PHASES.filter((phase) => process.env.BENCH_PHASES!.split(',').includes(phase.name))
  : ALL_PHASES;

const HELP = `npm run bench -- [seed flags]

Seeds the bench database when it holds less than the seed flags ask for, runs every phase
(${PHASES.map((phase) => phase.name).join(', ')}) against the built API and writes bench/results/latest.{md,json}.

${SEED_FLAGS}

Settings (environment):
  BENCH_DURATION     seconds measured per HTTP scenario (10)
  BENCH_CONNECTIONS  connections (32)
  BENCH_WARMUP       seconds of warm-up before each scenario (2)
  BENCH_PAGE_LIMIT   messages per history page (50)
  BENCH_SEARCH_RUNS  search tasks per kind of word (40)
  SEARCH_MAX_RESULTS results a search task keeps (1000)
  BENCH_REDIS_URL    (redis://127.0.0.1:6379/2)
  BENCH_AMQP_URL     (amqp://guest:guest@127.0.0.1:5672)
  BENCH_LOG_LEVEL    the API's LOG_LEVEL (warn)
  BENCH_README       0 leaves README.md's table alone (1)
  BENCH_PHASES       comma list of the phases to run (all)
  BENCH_EVENTS_STREAMS idle SSE streams the events phase opens on one API (10000)
  BENCH_EVENTS_STEPS the events phase's steps to run (idle,fanout,resume)
  BENCH_CPU_PROF     a directory: each API and consumer writes a V8 CPU profile there when it stops
                     (npm run profile-summary -- <file> sums one up)
`;

const ORDER: ('nothing' | DeploymentKind)[] = ['nothing', 'full', 'uncached'];

/** Runs the phases' steps, each API deployment started once for the steps that need it. */
async function runSteps(ctx: Context): Promise<void> {
  let current: Deployment | undefined;
  process.once('SIGINT', () => void (current?.stop() ?? Promise.resolve()).then(() => process.exit(130)));
  for (const needs of ORDER) {
    const steps: Step[] = PHASES.flatMap((phase) => phase.steps.filter((step) => step.needs === needs));
    if (steps.length === 0) continue;
    if (needs === 'nothing') {
      for (const step of steps) if (step.needs === 'nothing') await step.run(ctx);
      continue;
    }
    const reader = ctx.fx.users[0]!;
    const readyPath = `/v1/chats/${ctx.fx.bigChatId}/messages?limit=1`;
    current = await deploy(needs, ctx.settings, readyPath, reader.token);
    try {
      // One real login through the API: its session reads and searches from here on.
      if (needs === 'full') reader.token = await login(current, reader.name);
      for (const step of steps) if (step.needs !== 'nothing') await step.run(ctx, current);
    } finally {
      await current.stop();
      current = undefined;
    }
  }
}

async function main(): Promise<void> {
  const runStarted = Date.now();
  const { options, help } = seedArgs(process.argv.slice(2));
  if (help) return void process.stdout.write(HELP);
  const settings = readSettings();
  const { seed, skipped, db, fx } = await seedPhase(options, () => pool(4));
  const { rows } = await db.query<{ server_version: string }>('SHOW server_version');
  const ctx: Context = {
    settings,
    load: loadSettings(settings),
    db,
    seed,
    fx,
    measured: {},
    notes: [],
    peaks: new Peaks(),
  };
  await runSteps(ctx);
  const sent = await db.query('DELETE FROM messages WHERE seq > $1', [seed.maxSeq]);
  await db.end();
  const reports = PHASES.map((phase) => phase.report(ctx));
  const facts = { postgres: rows[0]!.server_version, skipped, runStarted, messagesAdded: sent.rowCount };
  await writeRun(ctx, reports, facts);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
