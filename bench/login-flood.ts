/**
 * Login flood: FLOOD_CONCURRENCY loops log in with random user names from one client address (via
 * X-Forwarded-For, TRUST_PROXY=true) for FLOOD_SECONDS, while another address logs in with the right
 * password, pings and reads a chat's history one request after another. Prints the other client's
 * latencies (p50/p95/max) and the flood's status counts. The API runs as its own process on embedded
 * defaults with the realistic BCRYPT_COST=12 unless the environment says otherwise.
 *
 *   npx tsx bench/login-flood.ts
 *   LOGIN_RATE_LIMIT_MAX=1000000 npx tsx bench/login-flood.ts   # the hashing bound alone
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { round, Samples } from './lib/stats.js';

const FLOOD_CONCURRENCY = Number(process.env.FLOOD_CONCURRENCY ?? 128);
const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 15);
/** Bounds the flood whatever happens: at most this many requests. */
const FLOOD_MAX_REQUESTS = 50_000;

// The API in its own process, as deployed: the flood client here does not share its event loop.
const env = {
  BCRYPT_COST: '12',
  DATA_DIR: 'memory://',
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  PORT: String(await freePort()),
  TRUST_PROXY: 'true',
  ...process.env,
  APPS: 'health,throttling,cache,auth,chats,messages',
  // Embedded: the figures compare code, not backends (spawn leaves undefined values out).
  DATABASE_URL: undefined,
  REDIS_URL: undefined,
  AMQP_URL: undefined,
};
const api = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'api'], { env, stdio: 'inherit' });
const base = `http://127.0.0.1:${env.PORT}`;
for (let tries = 0; ; tries++) {
  try {
    if ((await fetch(`${base}/ping`)).status === 200) break;
  } catch {
    if (tries > 600) throw new Error('the API did not start within 60 s');
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const call = async (path: string, ip: string, body?: unknown, token?: string) => {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      'X-Forwarded-For': ip,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(token ? { Authorization: `session_id ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - started, body: text };
};

// The victim: a user with a chat and one message, on its own address.
const victimIp = '203.0.113.7';
const floodIp = '198.51.100.66';
const credentials = { user_name: `victim-${randomUUID().slice(0, 8)}`, password: 'correct horse battery' };
await call('/v1/auth/register', victimIp, credentials);
const token = (
  JSON.parse((await call('/v1/auth/login', victimIp, credentials)).body) as { session_id: string }
).session_id;
const chatId = (
  JSON.parse((await call('/v1/chats', victimIp, { chat_name: 'bench' }, token)).body) as { chat_id: string }
).chat_id;
const memberId = (
  JSON.parse((await call(`/v1/chats/${chatId}/users`, victimIp, { user_name: 'v' }, token)).body) as {
    user_id: string;
  }
).user_id;
await call(`/v1/chats/${chatId}/messages?user_id=${memberId}`, victimIp, { message: 'hello' }, token);

// Baseline: the other client's login with no flood, on this machine under its current load.
const baseline = new Samples();
for (let i = 0; i < 5; i++) baseline.add((await call('/v1/auth/login', victimIp, credentials)).ms);

const deadline = Date.now() + FLOOD_SECONDS * 1000;
let sent = 0;
const floodStatuses = new Map<number, number>();
const floodLatency = new Map<number, Samples>();
const flood = Array.from({ length: FLOOD_CONCURRENCY }, async () => {
  while (Date.now() < deadline && sent < FLOOD_MAX_REQUESTS) {
    sent++;
    const res = await call('/v1/auth/login', floodIp, { user_name: `r-${randomUUID()}`, password: 'guess' });
    floodStatuses.set(res.status, (floodStatuses.get(res.status) ?? 0) + 1);
    if (!floodLatency.has(res.status)) floodLatency.set(res.status, new Samples());
    floodLatency.get(res.status)!.add(res.ms);
  }
});

const victim = { login: new Samples(), ping: new Samples(), history: new Samples() };
const victimStatuses = new Map<string, number>();
const victimLoop = (async () => {
  // Let the flood build up first.
  await new Promise((resolve) => setTimeout(resolve, 500));
  while (Date.now() < deadline - 500) {
    for (const [name, run] of [
      ['login', () => call('/v1/auth/login', victimIp, credentials)],
      ['ping', () => call('/ping', victimIp)],
      ['history', () => call(`/v1/chats/${chatId}/messages?limit=10`, victimIp, undefined, token)],
    ] as const) {
      const res = await run();
      victim[name].add(res.ms);
      const key = `${name} ${res.status}`;
      victimStatuses.set(key, (victimStatuses.get(key) ?? 0) + 1);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
})();

await Promise.all([...flood, victimLoop]);
const show = (samples: Samples) => {
  const { count, p50, p95, max } = samples.summary();
  return `n=${count} p50=${round(p50, 1)} ms p95=${round(p95, 1)} ms max=${round(max, 1)} ms`;
};
console.log(
  `flood: ${FLOOD_CONCURRENCY} concurrent logins from one address for ${FLOOD_SECONDS} s, bcrypt cost ${env.BCRYPT_COST}`,
);
console.log(`  flood answers: ${JSON.stringify(Object.fromEntries(floodStatuses))}`);
console.log(`  other client login before the flood: ${show(baseline)}`);
for (const [status, samples] of floodLatency) console.log(`  flood ${status}: ${show(samples)}`);
console.log(`  other client: ${JSON.stringify(Object.fromEntries(victimStatuses))}`);
for (const name of ['login', 'ping', 'history'] as const)
  console.log(`  other client ${name}: ${show(victim[name])}`);
api.kill('SIGTERM');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.once('error', reject);
  });
}
