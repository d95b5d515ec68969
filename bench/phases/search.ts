import type { Deployment } from '../lib/api.js';
import { interleaved, searchTask } from '../lib/load.js';
import { formatMs, formatRatio, type Row, type Target } from '../lib/report.js';
import { RssSampler } from '../lib/services.js';
import { SEARCH_STATEMENT, native, type PgStatement } from '../lib/sql.js';
import { roundSummary, type LatencySummary } from '../lib/stats.js';
import { COMMON_WORDS, RARE_WORDS } from '../lib/text.js';
import type { Context, Phase, PhaseReport } from './phase.js';

const KINDS = [
  ['common', COMMON_WORDS],
  ['rare', RARE_WORDS],
] as const;
type Kind = (typeof KINDS)[number][0];

interface KindResult {
  job: LatencySummary;
  query: LatencySummary;
  errors: number;
  /** Peak RSS of the API during this kind's runs. */
  rssMb: number;
}

interface State {
  byKind: Partial<Record<Kind, KindResult>>;
  /** Results a task kept, by word (the newest SEARCH_MAX_RESULTS of the matches). */
  kept: Record<string, number>;
}

/**
 * Search: create → SUCCESS through API, RabbitMQ, consumer and Redis, against the same SQL straight
 * through pg, interleaved run by run.
 */
async function run(ctx: Context, api: Deployment, state: State): Promise<void> {
  const searcher = ctx.fx.users[0]!;
  const statements = new Map<string, PgStatement>(
    [...COMMON_WORDS, ...RARE_WORDS].map((word) => [
      word,
      native(
        SEARCH_STATEMENT.sql,
        SEARCH_STATEMENT.bindings({ query: word, userId: searcher.id }, ctx.settings.searchMaxResults),
      ),
    ]),
  );
  const straight = await ctx.db.connect();
  try {
    for (const [kind, words] of KINDS) {
      const word = (n: number) => words[n % words.length]!;
      state.byKind[kind] = await runKind(ctx, api, kind, {
        query: async (n) => {
          const { text, values } = statements.get(word(n))!;
          await straight.query(text, values);
        },
        job: async (n) => {
          state.kept[word(n)] = await searchTask(api.url, searcher.token, word(n));
        },
      });
    }
  } finally {
    straight.release();
  }
}

async function runKind(
  ctx: Context,
  api: Deployment,
  kind: Kind,
  operations: Record<'query' | 'job', (run: number) => Promise<void>>,
): Promise<KindResult> {
  const apiPid = api.api.pid;
  const consumerPid = api.consumer?.pid;
  const sampler = new RssSampler(consumerPid === undefined ? [apiPid] : [apiPid, consumerPid]);
  const result = await interleaved(`search, ${kind} words`, ctx.settings.searchRuns, 5, operations);
  const peaks = sampler.stop();
  ctx.peaks.add(peaks.get(apiPid), consumerPid === undefined ? undefined : peaks.get(consumerPid));
  if (result.job.lastError) ctx.notes.push(`Search job error (${kind}): ${result.job.lastError}`);
  if (result.query.lastError) ctx.notes.push(`Straight query error (${kind}): ${result.query.lastError}`);
  return {
    job: result.job.samples.summary(),
    query: result.query.samples.summary(),
    errors: result.job.errors + result.query.errors,
    rssMb: peaks.get(apiPid) ?? 0,
  };
}

/** The job may take 1.5× the straight query plus 3 ms (API, broker, consumer, result store) at p95. */
const JOB_SHARE = 1.5;
const JOB_MARGIN_MS = 3;
const withinTarget = (s: KindResult) => s.job.p95 <= JOB_SHARE * s.query.p95 + JOB_MARGIN_MS;

function resultOf(state: State, kind: Kind): KindResult {
  const result = state.byKind[kind];
  if (!result) throw new Error(`search (${kind} words) has not run`);
  return result;
}

function kindRows(kind: Kind, words: readonly string[], s: KindResult): Row[] {
  return [
    {
      scenario: `straight search query via pg, ${kind} words (${words.join(', ')})`,
      p50: s.query.p50,
      p95: s.query.p95,
      p99: s.query.p99,
      errors: 0,
      ratio: '1.00× (ceiling)',
    },
    {
      scenario: `search create → SUCCESS, ${kind} words`,
      p50: s.job.p50,
      p95: s.job.p95,
      p99: s.job.p99,
      errors: s.errors,
      rssMb: s.rssMb,
      ratio: `${formatRatio(s.job.p95 / s.query.p95)} straight query (p95)`,
      target: `p95 < 150 ms, ≤ ${JOB_SHARE}× straight query + ${JOB_MARGIN_MS} ms`,
      met: s.job.p95 < 150 && withinTarget(s),
    },
  ];
}

function kindTargets(ctx: Context, kind: Kind, s: KindResult): Target[] {
  return [
    {
      target: `search create → SUCCESS p95 < 150 ms (${kind} words, ${ctx.seed.messages.toLocaleString('en-US')} messages)`,
      measured: `p50 ${formatMs(s.job.p50)} ms, p95 ${formatMs(s.job.p95)} ms`,
      met: s.job.p95 < 150,
    },
    {
      target: `search create → SUCCESS ≤ ${JOB_SHARE}× the straight query + ${JOB_MARGIN_MS} ms at p95 (${kind} words)`,
      measured:
        `p95 ${formatMs(s.job.p95)} vs ${formatMs(s.query.p95)} ms: bound ${formatMs(JOB_SHARE * s.query.p95 + JOB_MARGIN_MS)} ms, ` +
        `${formatRatio(s.job.p95 / s.query.p95)}; p50 ${formatMs(s.job.p50)} vs ${formatMs(s.query.p50)} ms`,
      met: withinTarget(s),
    },
  ];
}

function report(ctx: Context, state: State): PhaseReport {
  const perWord = (words: readonly string[], of: Record<string, number | undefined>) =>
    Object.fromEntries(words.map((word) => [word, of[word]]));
  const search = Object.fromEntries(
    KINDS.map(([kind, words]) => {
      const s = resultOf(state, kind);
      const summary = { job: roundSummary(s.job), query: roundSummary(s.query), errors: s.errors };
      return [
        kind,
        {
          words,
          matches: perWord(words, ctx.seed.wordHits),
          keptPerTask: perWord(words, state.kept),
          ...summary,
        },
      ];
    }),
  );
  const hits = [...COMMON_WORDS, ...RARE_WORDS].map(
    (word) => `${word} (${(ctx.seed.wordHits[word] ?? 0).toLocaleString('en-US')} matching messages)`,
  );
  return {
    rows: KINDS.flatMap(([kind, words]) => kindRows(kind, words, resultOf(state, kind))),
    targets: KINDS.flatMap(([kind]) => kindTargets(ctx, kind, resultOf(state, kind))),
    notes: [
      `Search words: ${hits.join(', ')}; a task keeps the newest ${ctx.settings.searchMaxResults} with highlights. ` +
        'The searching user is a member of every chat, so each query covers all messages. The client waits ' +
        'with one long poll (`GET …/status/{task_id}?wait=`), answered when the task finishes.',
    ],
    json: { search },
  };
}

/** Search tasks through the whole flow, against the repository's query straight through pg. */
export function searchPhase(): Phase {
  const state: State = { byKind: {}, kept: {} };
  return {
    name: 'search',
    steps: [{ needs: 'full', run: (ctx, api) => run(ctx, api, state) }],
    report: (ctx) => report(ctx, state),
  };
}
