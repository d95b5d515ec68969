import fs from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import { ROOT } from './db.js';

export interface Row {
  scenario: string;
  /** req/s (HTTP), inserts/s (pg); absent for the sequential search rows. */
  rps?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  errors?: number;
  /** Peak RSS of the API process during the scenario. */
  rssMb?: number;
  /** The API process's CPU time per successful request (ms). */
  cpuMs?: number;
  ratio?: string;
  target?: string;
  met?: boolean;
}

export interface Target {
  target: string;
  measured: string;
  met: boolean;
}

const dash = '—';

export function formatRps(value: number | undefined): string {
  return value === undefined ? dash : Math.round(value).toLocaleString('en-US');
}

export function formatMs(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return dash;
  // Truncated, not rounded, below 10 ms: 9.996 shows as 9.99, never as a misleading "10.00".
  return value < 10
    ? (Math.floor(value * 100) / 100).toFixed(2)
    : value < 100
      ? value.toFixed(1)
      : value.toFixed(0);
}

export function formatRatio(value: number): string {
  return `${value.toFixed(2)}×`;
}

const metText = (met: boolean | undefined) => (met === undefined ? '' : met ? 'yes' : '**no**');

export function table(rows: Row[]): string {
  const lines = [
    '| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | API peak RSS | API CPU ms/req | ratio | target | met |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${[
        row.scenario,
        formatRps(row.rps),
        formatMs(row.p50),
        formatMs(row.p95),
        formatMs(row.p99),
        row.errors === undefined ? dash : String(row.errors),
        row.rssMb === undefined ? dash : `${Math.round(row.rssMb)} MB`,
        row.cpuMs === undefined ? dash : row.cpuMs.toFixed(2),
        row.ratio ?? '',
        row.target ?? '',
        metText(row.met),
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

export function targetList(targets: Target[]): string {
  return targets.map((t) => `- ${t.met ? 'met' : '**missed**'}: ${t.target} — ${t.measured}`).join('\n');
}

async function formatMarkdown(file: string, text: string): Promise<string> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...options, filepath: file });
}

export async function writeResults(
  dir: string,
  markdown: string,
  json: unknown,
): Promise<{ md: string; json: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const md = path.join(dir, 'latest.md');
  const jsonFile = path.join(dir, 'latest.json');
  fs.writeFileSync(md, await formatMarkdown(md, markdown));
  fs.writeFileSync(jsonFile, await formatMarkdown(jsonFile, JSON.stringify(json, null, 2)));
  return { md, json: jsonFile };
}

const START = '<!-- bench:latest:start -->';
const END = '<!-- bench:latest:end -->';

/**
 * Replaces what README.md holds between the bench markers with `section` (formatted as prettier
 * would). Returns false when the markers are missing.
 */
export async function updateReadme(section: string): Promise<boolean> {
  const file = path.join(ROOT, 'README.md');
  const readme = fs.readFileSync(file, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) return false;
  const updated = `${readme.slice(0, start + START.length)}\n\n${section.trim()}\n\n${readme.slice(end)}`;
  fs.writeFileSync(file, await formatMarkdown(file, updated));
  return true;
}
