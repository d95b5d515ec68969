import fs from 'node:fs';
import path from 'node:path';
import { formatMs, formatRatio, formatRps, type Row } from './report.js';

/** A run's rows as bench/results/*.json keep them. */
interface SavedRun {
  date: string;
  commit: string;
  rows: Row[];
}

/**
 * Rows renamed since the baseline run: the current name → the baseline's. A row of neither list is
 * new (no before figure).
 */
const RENAMED: Record<string, string> = {
  'bare Koa, the same history page (13.9 KB)': 'bare Koa, the same 50-message page (13.9 KB)',
  'history page, depth 100, cached (hot)': 'history page, cached (one chat, hot)',
  'straight INSERT via pg, prepared (ceiling)': 'straight INSERT via pg (ceiling)',
};

export const BASELINE_FILE = 'before.json';

function readRun(file: string): SavedRun | undefined {
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as SavedRun;
}

/** The row every run has for the machine's own speed: runs on a faster or slower day are scaled by it. */
const SPEED_ROW = 'bare Koa `{}` (ceiling)';

/**
 * The figure compared for a row: req/s when it has one (also as a share of the run's bare-Koa
 * ceiling, `speed` = after ÷ before of that ceiling), else p95 (sequential search rows).
 */
function change(before: Row, after: Row, speed: number | undefined): string {
  if (before.rps !== undefined && after.rps !== undefined && before.rps > 0) {
    const raw = after.rps / before.rps;
    return speed === undefined
      ? `${formatRatio(raw)} req/s`
      : `${formatRatio(raw)} req/s; ${formatRatio(raw / speed)} of the ceiling's share`;
  }
  if (before.p95 !== undefined && after.p95 !== undefined && after.p95 > 0) {
    return `${formatRatio(before.p95 / after.p95)} faster at p95`;
  }
  return '';
}

/**
 * A "before and after" table: every row of this run beside the same row of the baseline run
 * (bench/results/before.json, the run before the performance work), when it had one.
 */
export function comparison(dir: string, rows: Row[]): string | undefined {
  const baseline = readRun(path.join(dir, BASELINE_FILE));
  if (!baseline) return undefined;
  const before = new Map(baseline.rows.map((row) => [row.scenario, row]));
  const ceilings = [before.get(SPEED_ROW)?.rps, rows.find((row) => row.scenario === SPEED_ROW)?.rps];
  const speed = ceilings[0] && ceilings[1] ? ceilings[1] / ceilings[0] : undefined;
  const lines = [
    `Before: the run of ${baseline.date.slice(0, 10)} (commit ${baseline.commit}), the same data; rows it did ` +
      'not have are new.' +
      (speed === undefined
        ? ''
        : ` The machine itself ran at ${formatRatio(speed)} its speed then (bare Koa \`{}\`): "of the ceiling's ` +
          "share\" compares each row's req/s as a share of its own run's bare-Koa ceiling."),
    '',
    '| scenario | before req/s | after req/s | before p95 ms | after p95 ms | before p99 ms | after p99 ms | change |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    const old = before.get(RENAMED[row.scenario] ?? row.scenario);
    lines.push(
      `| ${[
        row.scenario,
        old ? formatRps(old.rps) : 'new',
        formatRps(row.rps),
        old ? formatMs(old.p95) : '',
        formatMs(row.p95),
        old ? formatMs(old.p99) : '',
        formatMs(row.p99),
        old ? change(old, row, speed) : '',
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
