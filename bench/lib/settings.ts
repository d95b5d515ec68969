import type { LoadSettings } from './load.js';

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
}

/** The run's settings, from the environment (described in `npm run bench -- --help`). */
export function readSettings() {
  return {
    duration: setting('BENCH_DURATION', 10),
    connections: setting('BENCH_CONNECTIONS', 32),
    warmup: setting('BENCH_WARMUP', 2),
    pageLimit: setting('BENCH_PAGE_LIMIT', 50),
    searchRuns: setting('BENCH_SEARCH_RUNS', 40),
    searchMaxResults: setting('SEARCH_MAX_RESULTS', 1000),
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/2',
    amqpUrl: process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
    updateReadme: process.env.BENCH_README !== '0',
  };
}

export type Settings = ReturnType<typeof readSettings>;

export const loadSettings = (settings: Settings): LoadSettings => ({
  duration: settings.duration,
  warmup: settings.warmup,
  connections: settings.connections,
});
