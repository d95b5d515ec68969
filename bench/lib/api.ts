import path from 'node:path';
import { BENCH_DATABASE_URL, MAIN_JS } from './db.js';
import { SEED_PASSWORD } from './seeding.js';
import { freePort, nodeFlags, startService, waitFor, type Role, type Service } from './services.js';
import type { Settings } from './settings.js';

/** Every module but the cache: history, sessions and memberships all come from the database. */
export const APPS_UNCACHED = 'health,throttling,auth,chats,messages,search,docs';
export const BUDGET = '10000000';

/**
 * How the built API runs for a step: `full` is every module (cache included) with one search
 * consumer, the real flow; `uncached` is the API alone without the cache module.
 */
export type DeploymentKind = 'full' | 'uncached';

export interface Deployment {
  kind: DeploymentKind;
  url: string;
  api: Service;
  consumer?: Service;
  /** The processes whose RSS a scenario samples, by role. */
  watched: Record<string, number>;
  stop(): Promise<void>;
}

export const auth = (token: string) => ({ Authorization: `session_id ${token}` });

/** The search queue of this bench database: benches on other databases of the same broker do not take its jobs. */
const SEARCH_QUEUE = `messenger.search.bench.${new URL(BENCH_DATABASE_URL).pathname.slice(1) || 'default'}`;

/**
 * `node <the entrypoint's flags for role> dist/src/main.js role`, as the image starts it; with
 * BENCH_CPU_PROF=<dir>, each process also writes a V8 CPU profile under <dir>/<name>/ when it stops
 * (`npm run profile-summary -- <file>` sums it up). A V8 profile counts time the process was descheduled
 * (on a busy machine, a socket write that wakes Postgres or Redis hands them the core) as the call's
 * own: BENCH_PERF_MAP=1 lets `perf record -e cpu-clock` see only the CPU time, with JS names.
 */
function start(name: string, role: Role, env: NodeJS.ProcessEnv): Service {
  const profileDir = process.env.BENCH_CPU_PROF;
  const profiling = profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${path.join(path.resolve(profileDir), name)}`]
    : [];
  // BENCH_PERF_MAP=1: JIT symbols for `perf record` (/tmp/perf-<pid>.map), to profile CPU time only.
  if (process.env.BENCH_PERF_MAP === '1') profiling.push('--perf-basic-prof-only-functions');
  // BENCH_NODE_FLAGS (space-separated; empty for V8's defaults): instead of the entrypoint's, to compare.
  const flags = process.env.BENCH_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? nodeFlags(role);
  return startService(name, [...flags, ...profiling, MAIN_JS, role], env);
}

function serviceEnv(settings: Settings, port: number, apps: string): NodeJS.ProcessEnv {
  const skip = new Set(['POSTGRES_HOSTS', 'POSTGRES_HOST', 'DATA_DIR']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !skip.has(name)));
  return {
    ...env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    APPS: apps,
    DATABASE_URL: BENCH_DATABASE_URL,
    REDIS_URL: settings.redisUrl,
    AMQP_URL: settings.amqpUrl,
    LOG_LEVEL: settings.logLevel,
    // Throttling stays on (its cost is part of every request) with budgets nobody reaches.
    RATE_LIMIT_MAX: BUDGET,
    SEND_RATE_LIMIT_MAX: BUDGET,
    LOGIN_FAIL_LIMIT_MAX: BUDGET,
    SEARCH_QUEUE,
    // One user creates every search task of the run (80 within the results' lifetime): the per-user
    // cap on tasks held is a quota, raised like the budgets.
    SEARCH_MAX_STORED_TASKS: '100000',
    // Every bench connection comes from 127.0.0.1, and the events phase holds thousands of streams.
    HTTP_MAX_CONNECTIONS_PER_IP: '0',
    STREAMS_PER_USER: '10000',
  };
}

/** Starts the API (and for `full` a consumer) and waits until `readyPath` answers 200 to `token`. */
export async function deploy(
  kind: DeploymentKind,
  settings: Settings,
  readyPath: string,
  token: string,
): Promise<Deployment> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const services: Service[] = [];
  const stop = async () => {
    await Promise.all(services.splice(0).map((service) => service.stop()));
  };
  if (kind === 'full') {
    const api = start('api', 'api', serviceEnv(settings, port, 'all'));
    const consumer = start('consumer', 'consumer', serviceEnv(settings, port, 'all'));
    services.push(api, consumer);
    const deployment = { kind, url, api, consumer, watched: { api: api.pid, consumer: consumer.pid }, stop };
    await waitFor(api, `${url}${readyPath}`, auth(token)).catch(failed(stop));
    return deployment;
  }
  const api = start('api-uncached', 'api', serviceEnv(settings, port, APPS_UNCACHED));
  services.push(api);
  await waitFor(api, `${url}${readyPath}`, auth(token)).catch(failed(stop));
  return { kind, url, api, watched: { api: api.pid }, stop };
}

/** Another API process (every module) on the same Postgres and Redis, ready like `deploy`'s. */
export async function startApi(
  settings: Settings,
  name: string,
  readyPath: string,
  token: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const api = start(name, 'api', serviceEnv(settings, port, 'all'));
  const stop = () => api.stop();
  await waitFor(api, `${url}${readyPath}`, auth(token)).catch(failed(stop));
  return { url, pid: api.pid, stop };
}

const failed = (stop: () => Promise<void>) => async (error: unknown) => {
  await stop();
  throw error;
};

/** One real login through the API (the seeded password hash works): its session id. */
export async function login(deployment: Deployment, userName: string): Promise<string> {
  const response = await fetch(`${deployment.url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user_name: userName, password: SEED_PASSWORD }),
  });
  if (response.status !== 200) throw new Error(`login through the API failed: ${response.status}`);
  return ((await response.json()) as { session_id: string }).session_id;
}

/** The `X-Cache` header of the third read of `url`. */
export async function probeCache(url: string, token: string): Promise<string> {
  let header = '';
  for (let i = 0; i < 3; i++) {
    const response = await fetch(url, { headers: auth(token) });
    await response.arrayBuffer();
    header = response.headers.get('x-cache') ?? 'absent';
  }
  return header;
}
