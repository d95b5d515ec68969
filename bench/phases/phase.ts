import type pg from 'pg';
import type { Deployment, DeploymentKind } from '../lib/api.js';
import type { LoadSettings, Measured } from '../lib/load.js';
import { formatRatio, type Row, type Target } from '../lib/report.js';
import type { SeedInfo } from '../lib/seeding.js';
import type { Settings } from '../lib/settings.js';
import type { Fixtures } from './seed.js';

/** What every phase shares: the settings, the seeded data and what the run has measured so far. */
export interface Context {
  settings: Settings;
  load: LoadSettings;
  db: pg.Pool;
  seed: SeedInfo;
  fx: Fixtures;
  /** Every scenario measured, by name, in the order they ran (the JSON's `scenarios`). */
  measured: Record<string, Measured>;
  /** Observations made while running (probes, errors), appended to the notes in that order. */
  notes: string[];
  peaks: Peaks;
}

/**
 * One step of a phase. Steps run grouped by what they need (nothing, then the `full` API, then the
 * `uncached` one), in phase order within a group, so each API is started once.
 */
export type Step =
  | { needs: 'nothing'; run(ctx: Context): Promise<void> }
  | { needs: DeploymentKind; run(ctx: Context, deployment: Deployment): Promise<void> };

export interface PhaseReport {
  rows: Row[];
  targets: Target[];
  /** Method notes (how to read the phase's rows). */
  notes: string[];
  /** Added to the JSON's `settings`. */
  settings?: Record<string, unknown>;
  /** Added to the JSON after `scenarios`. */
  json?: Record<string, unknown>;
}

/** A benchmark phase: its steps, and once every step has run, its part of the results. */
export interface Phase {
  name: string;
  steps: Step[];
  report(ctx: Context): PhaseReport;
}

/** Peak RSS of the API and the consumer over every scenario. */
export class Peaks {
  api = 0;
  consumer = 0;

  add(api: number | undefined, consumer: number | undefined): void {
    this.api = Math.max(this.api, api ?? 0);
    this.consumer = Math.max(this.consumer, consumer ?? 0);
  }

  keep(measured: Measured): Measured {
    this.add(measured.peakRssMb.api, measured.peakRssMb.consumer);
    return measured;
  }
}

/** A scenario another phase measured (the phases run before any report is built). */
export function scenario(ctx: Context, name: string): Measured {
  const measured = ctx.measured[name];
  if (!measured) throw new Error(`scenario ${name} has not run`);
  return measured;
}

export const vsKoa = (ctx: Context, x: Measured) =>
  `${formatRatio(x.rps / scenario(ctx, 'koa').rps)} bare Koa`;

export function httpRow(scenario: string, x: Measured, extra: Partial<Row> = {}): Row {
  return {
    scenario,
    rps: x.rps,
    p50: x.latency.p50,
    p95: x.latency.p95,
    p99: x.latency.p99,
    errors: x.errors,
    rssMb: x.peakRssMb.api,
    cpuMs:
      x.cpuSeconds.api === undefined || x.completed === 0
        ? undefined
        : (x.cpuSeconds.api * 1000) / x.completed,
    ...extra,
  };
}
