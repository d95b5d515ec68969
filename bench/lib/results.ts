import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Context, PhaseReport } from '../phases/phase.js';
import { APPS_UNCACHED, BUDGET } from './api.js';
import { comparison } from './compare.js';
import { ROOT } from './db.js';
import { table, targetList, updateReadme, writeResults, type Row, type Target } from './report.js';
import { LOG_DIR } from './services.js';
import { round, roundSummary } from './stats.js';

function gitDescribe(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT }).toString().trim();
    return dirty ? `${commit} + uncommitted changes in src/` : commit;
  } catch {
    return 'unknown';
  }
}

const merged = (parts: (Record<string, unknown> | undefined)[]): Record<string, unknown> =>
  Object.fromEntries(parts.flatMap((part) => Object.entries(part ?? {})));

/** What the run was: when, where, on which data and settings. */
export interface RunFacts {
  postgres: string;
  skipped: boolean;
  runStarted: number;
  /** Rows the send scenarios added (deleted again). */
  messagesAdded: number | null;
}

function runContext(ctx: Context, reports: PhaseReport[], facts: RunFacts) {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return {
    date: new Date().toISOString(),
    commit: gitDescribe(),
    machine: `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, ${os.type()} ${os.release()}`,
    node: process.version,
    postgres: facts.postgres,
    seed: { ...ctx.seed, reused: facts.skipped },
    settings: {
      ...ctx.settings,
      appsUncached: APPS_UNCACHED,
      budgets: BUDGET,
      ...merged(reports.map((report) => report.settings)),
    },
    runSeconds: Math.round((Date.now() - facts.runStarted) / 1000),
    messagesAddedAndRemoved: facts.messagesAdded,
  };
}
type RunContext = ReturnType<typeof runContext>;

function header(ctx: Context, run: RunContext): string {
  const { seed, settings } = ctx;
  const n = (value: number) => value.toLocaleString('en-US');
  return [
    `Run ${run.date.slice(0, 16).replace('T', ' ')} UTC on ${run.machine}; Node ${run.node}, ` +
      `PostgreSQL ${run.postgres}; commit ${run.commit}.`,
    `Data: ${n(seed.messages)} messages (${n(seed.bigChat)} in one chat), ` +
      `${n(seed.users)} users, ${n(seed.chats)} chats; seeded in ${seed.seconds} s ` +
      `(${n(seed.messagesPerSecond)} messages/s with index builds and vacuum; message inserts alone ` +
      `${seed.loadSeconds} s).`,
    `Each HTTP scenario: ${settings.duration} s after a ${settings.warmup} s warm-up, ${settings.connections} connections ` +
      `(autocannon, in the same machine); history pages of ${settings.pageLimit} messages; search: ${settings.searchRuns} sequential ` +
      `tasks per word kind, each awaited with a status long poll, interleaved with the same SQL straight through pg.`,
  ]
    .map((line) => `- ${line}`)
    .join('\n');
}

function methodNotes(ctx: Context, reports: PhaseReport[]): string[] {
  return [
    'The API runs from `dist/` with Postgres, Redis and RabbitMQ (one `consumer` process), every module on, ' +
      `throttling on with budgets raised to ${Number(BUDGET).toLocaleString('en-US')}, \`LOG_LEVEL=${ctx.settings.logLevel}\`, ` +
      'default pool (`DB_POOL_MAX`).',
    `Ratios are from this one run on a shared machine; the load generator (autocannon, in the runner's process) ` +
      `shares the ${os.cpus().length} cores with the API, Postgres, Redis and RabbitMQ.`,
    ...reports.flatMap((report) => report.notes),
    ...ctx.notes,
  ];
}

const RSS_LIMIT_MB = 150;

/**
 * Writes bench/results/latest.{md,json} and (unless BENCH_README=0) the README's table from the
 * phases' reports, and prints the table.
 */
export async function writeRun(ctx: Context, reports: PhaseReport[], facts: RunFacts): Promise<void> {
  const run = runContext(ctx, reports, facts);
  const rows: Row[] = reports.flatMap((report) => report.rows);
  const targets: Target[] = [...reports.flatMap((report) => report.targets)];
  // Only when some scenario ran an API under load (a run of a few phases may have none).
  if (ctx.peaks.api > 0) {
    targets.push({
      target: `API RSS < ${RSS_LIMIT_MB} MB peak over every scenario (1,000 open streams included; the 10,000 idle streams apart)`,
      measured: `peak ${Math.round(ctx.peaks.api)} MB over all API scenarios (consumer peak ${Math.round(ctx.peaks.consumer)} MB)`,
      met: ctx.peaks.api < RSS_LIMIT_MB,
    });
  }
  const top = header(ctx, run);
  const notes = methodNotes(ctx, reports);
  const dir = path.join(ROOT, 'bench', 'results');
  const compared = comparison(dir, rows);
  const markdown = [
    '# Benchmark: latest results',
    '',
    top,
    '',
    table(rows),
    '',
    '## Targets',
    '',
    targetList(targets),
    '',
    ...(compared ? ['## Before and after', '', compared, ''] : []),
    '## Notes',
    '',
    notes.map((note) => `- ${note}`).join('\n'),
    '',
  ].join('\n');
  const scenarios = Object.fromEntries(
    Object.entries(ctx.measured).map(([name, x]) => [
      name,
      { ...x, rps: round(x.rps, 1), seconds: round(x.seconds), latency: roundSummary(x.latency) },
    ]),
  );
  const json = {
    ...run,
    rows,
    targets,
    scenarios,
    ...merged(reports.map((report) => report.json)),
    peakRssMb: { api: round(ctx.peaks.api, 1), consumer: round(ctx.peaks.consumer, 1) },
    notes,
  };
  const files = await writeResults(dir, markdown, json);
  if (ctx.settings.updateReadme) {
    const readme = `${top}\n\n${table(rows)}\n\n${targetList(targets)}`;
    if (!(await updateReadme(readme))) process.stderr.write('README.md has no bench markers: not updated\n');
  }
  process.stdout.write(`\n${table(rows)}\n\n${targetList(targets)}\n\nwritten: ${files.md}, ${files.json}\n`);
  process.stdout.write(`logs of the processes: ${LOG_DIR}; whole run ${run.runSeconds} s\n`);
}
