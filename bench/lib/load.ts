import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import pg from 'pg';
import { Progress } from './progress.js';
import { cpuSeconds, RssSampler } from './services.js';
import { Samples, type LatencySummary } from './stats.js';

/** What one measured scenario produced. */
export interface Measured {
  /** Successful (2xx) responses, or completed queries, per second. */
  rps: number;
  completed: number;
  seconds: number;
  latency: LatencySummary;
  errors: number;
  statusCodes: Record<string, number>;
  /** Peak RSS in MB per sampled process name. */
  peakRssMb: Record<string, number>;
  /** CPU time (user + system) per process name over the measured seconds, in seconds. */
  cpuSeconds: Record<string, number>;
}

export interface LoadSettings {
  duration: number;
  warmup: number;
  connections: number;
}

type Watched = Record<string, number>;

/** Merges runs of the same scenario (e.g. the halves of an interleaved pair). */
export function merge(runs: { measured: Measured; samples: Samples }[]): Measured {
  const samples = new Samples();
  const statusCodes: Record<string, number> = {};
  const peakRssMb: Record<string, number> = {};
  const cpu: Record<string, number> = {};
  let completed = 0;
  let seconds = 0;
  let errors = 0;
  for (const run of runs) {
    samples.addAll(run.samples);
    completed += run.measured.completed;
    seconds += run.measured.seconds;
    errors += run.measured.errors;
    for (const [code, count] of Object.entries(run.measured.statusCodes)) {
      statusCodes[code] = (statusCodes[code] ?? 0) + count;
    }
    for (const [name, mb] of Object.entries(run.measured.peakRssMb)) {
      peakRssMb[name] = Math.max(peakRssMb[name] ?? 0, mb);
    }
    for (const [name, used] of Object.entries(run.measured.cpuSeconds)) cpu[name] = (cpu[name] ?? 0) + used;
  }
  return {
    rps: completed / seconds,
    completed,
    seconds,
    latency: samples.summary(),
    errors,
    statusCodes,
    peakRssMb,
    cpuSeconds: cpu,
  };
}

/** The CPU seconds each watched process has used so far. */
function cpuOf(watched: Watched): Record<string, number> {
  return Object.fromEntries(Object.entries(watched).map(([name, pid]) => [name, cpuSeconds(pid) ?? 0]));
}

function peaks(sampler: RssSampler | undefined, watched: Watched): Record<string, number> {
  const byPid = sampler?.stop() ?? new Map<number, number>();
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(watched)) {
    const mb = byPid.get(pid);
    if (mb !== undefined) out[name] = mb;
  }
  return out;
}

/**
 * One autocannon scenario: a warm-up (not recorded), then `duration` seconds measured. Latencies
 * are taken from every 2xx response (autocannon's own histogram has 1 ms resolution), and the RSS
 * of the `watched` processes is sampled meanwhile.
 */
export async function http(
  label: string,
  options: autocannon.Options,
  settings: LoadSettings,
  watched: Watched = {},
  seconds = settings.duration,
): Promise<{ measured: Measured; samples: Samples }> {
  const base: autocannon.Options = { connections: settings.connections, timeout: 10, ...options };
  if (settings.warmup > 0) {
    const progress = new Progress(`${label} (warm-up)`.padEnd(34), settings.warmup);
    const warm = autocannon({ ...base, duration: settings.warmup });
    let ticks = 0;
    warm.on('tick', () => progress.set(++ticks));
    await warm;
    progress.finish();
  }
  const samples = new Samples();
  const statusCodes: Record<string, number> = {};
  const sampler = Object.keys(watched).length ? new RssSampler(Object.values(watched)) : undefined;
  const progress = new Progress(label.padEnd(34), seconds);
  const cpuBefore = cpuOf(watched);
  const run = autocannon({ ...base, duration: seconds });
  let completed = 0;
  let lastSecond = 0;
  let ticks = 0;
  run.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    if (status >= 200 && status < 300) {
      samples.add(ms);
      completed++;
    }
  });
  run.on('tick', () => {
    progress.set(++ticks, `${(completed - lastSecond).toLocaleString('en-US')} req/s`);
    lastSecond = completed;
  });
  const result = await run;
  const cpuAfter = cpuOf(watched);
  progress.finish();
  const measured: Measured = {
    rps: completed / result.duration,
    completed,
    seconds: result.duration,
    latency: samples.summary(),
    errors: result.errors + result.timeouts + result.non2xx,
    statusCodes,
    peakRssMb: peaks(sampler, watched),
    cpuSeconds: Object.fromEntries(
      Object.keys(watched).map((name) => [name, cpuAfter[name]! - cpuBefore[name]!]),
    ),
  };
  return { measured, samples };
}

/**
 * A straight-through-pg ceiling: `connections` pg clients each issuing `statement` (prepared once
 * per client under its name) with the next parameters, back to back, for the duration (after a
 * warm-up that is not recorded).
 */
export async function pgLoop(
  label: string,
  url: string,
  statement: { name: string; text: string },
  nextParams: () => unknown[],
  settings: LoadSettings,
): Promise<{ measured: Measured; samples: Samples }> {
  const clients = await Promise.all(
    Array.from({ length: settings.connections }, async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  try {
    const loop = async (seconds: number, samples?: Samples, progress?: Progress) => {
      const stopAt = performance.now() + seconds * 1000;
      let errors = 0;
      let completed = 0;
      const started = performance.now();
      const ticker = progress && setInterval(() => progress.set((performance.now() - started) / 1000), 200);
      await Promise.all(
        clients.map(async (client) => {
          while (performance.now() < stopAt) {
            const began = performance.now();
            try {
              await client.query({ ...statement, values: nextParams() });
              samples?.add(performance.now() - began);
              completed++;
            } catch {
              errors++;
            }
          }
        }),
      );
      clearInterval(ticker);
      return { completed, errors, seconds: (performance.now() - started) / 1000 };
    };
    if (settings.warmup > 0) await loop(settings.warmup);
    const samples = new Samples();
    const progress = new Progress(label.padEnd(34), settings.duration);
    const { completed, errors, seconds } = await loop(settings.duration, samples, progress);
    progress.finish();
    return {
      measured: {
        rps: completed / seconds,
        completed,
        seconds,
        latency: samples.summary(),
        errors,
        statusCodes: {},
        peakRssMb: {},
        cpuSeconds: {},
      },
      samples,
    };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}

/**
 * Times each of `operations` `runs` times, interleaved (run i of every operation, then run i + 1),
 * so that drift in the machine's load hits them alike; `warmup` untimed rounds first. Failures are
 * counted, not timed.
 */
export async function interleaved<K extends string>(
  label: string,
  runs: number,
  warmup: number,
  operations: Record<K, (run: number) => Promise<unknown>>,
): Promise<Record<K, { samples: Samples; errors: number; lastError?: string }>> {
  const names = Object.keys(operations) as K[];
  for (let i = 0; i < warmup; i++) {
    for (const name of names) await operations[name](i).catch(() => undefined);
  }
  const out = Object.fromEntries(
    names.map((name) => [name, { samples: new Samples(), errors: 0 }]),
  ) as Record<K, { samples: Samples; errors: number; lastError?: string }>;
  const progress = new Progress(label.padEnd(34), runs, 'rounds');
  for (let i = 0; i < runs; i++) {
    for (const name of names) {
      const began = performance.now();
      try {
        await operations[name](i);
        out[name].samples.add(performance.now() - began);
      } catch (error) {
        out[name].errors++;
        out[name].lastError = error instanceof Error ? error.message : String(error);
      }
    }
    progress.tick();
  }
  progress.finish();
  return out;
}

/** Creates a search task over HTTP and polls its status every `pollMs` until SUCCESS. */
export async function searchTask(
  api: string,
  token: string,
  query: string,
  timeoutMs = 15_000,
): Promise<number> {
  const headers = { Authorization: `session_id ${token}`, 'Content-Type': 'application/json' };
  const created = await fetch(`${api}/v1/chats/search`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ message: query }),
  });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
  const { task_id: taskId } = (await created.json()) as { task_id: string };
  const deadline = performance.now() + timeoutMs;
  // A long poll: the status request answers when the task finishes, as a client would wait for it.
  for (;;) {
    const wait = Math.max(1, Math.ceil((deadline - performance.now()) / 1000));
    const response = await fetch(`${api}/v1/chats/search/status/${taskId}?wait=${wait}`, { headers });
    const status = (await response.json()) as { status: string; total?: number; error?: string };
    if (status.status === 'SUCCESS') return status.total ?? 0;
    if (status.status === 'FAILED') throw new Error(`task failed: ${status.error ?? ''}`);
    if (performance.now() > deadline) throw new Error('task did not finish in time');
  }
}
