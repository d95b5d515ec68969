import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  badParameters,
  createChat,
  join,
  json,
  registerAndLogin,
  send,
  unique,
  memberOfNewChat,
} from './support/fixtures.js';

import { profile } from './support/profile.js';

import { Broker, freshQueueName } from './support/search-helpers.js';

import {
  freePort,
  isListening,
  killLeftovers,
  launch,
  isMigrated,
  migrated,
  runToExit,
  spawnApi,
  type Launched,
  type LogLine,
} from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

/** Resolves true when something accepts TCP connections on host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 500 });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

const isStarting = (line: LogLine) => line.msg === 'starting';
/** As long as `spawnApi` waits: a loaded machine may take that long to load the code and open PGlite. */
const START_MS = 45_000;
const isConsumerStarted = (line: LogLine) => line.msg === 'consumer started';

/**
 * Sends SIGTERM and asserts a normal stop: exit code 0, "stopped" logged, nothing on stderr, and no
 * error logged but the request lines of answers the API gave (a 503 before the schema is ready) and
 * the outage lines of a backend (the servers are shared: another suite may be restarting one).
 */
async function assertStopsCleanly(app: Launched): Promise<void> {
  // Stopping during the start waits for the start first.
  const code = await app.stop('SIGTERM', START_MS);
  const stderr = app.stderr();
  const errors = app
    .logs()
    .filter((line) => line.level >= 50 && line.msg !== 'request' && line.dependency === undefined);
  const report = `exit code ${code}; stderr:\n${stderr}\nerrors logged: ${JSON.stringify(errors)}`;
  assert.equal(code, 0, report);
  assert.equal(stderr, '', report);
  assert.deepEqual(errors, [], report);
  assert.ok(
    app.logs().some((line) => line.msg === 'stopped'),
    `no "stopped" line in:\n${app.lines.join('\n')}`,
  );
}

/** The port of the "listening" line (waiting for it). */
async function portOf(app: Launched): Promise<number> {
  return (await app.waitForLog(isListening, START_MS)).port as number;
}

/** One search (authentication off): published to the broker once the schema is ready, else a 503. */
async function search(app: Launched): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${await portOf(app)}/v1/chats/search`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ message: 'stopped during start' }),
  });
  await res.arrayBuffer();
  return res.status;
}

interface RawResponse {
  status: number;
  body: unknown;
  at: number;
}

/** A plain node:http request through `agent`, with the moment it was sent. */
function rawRequest(
  url: string,
  method: string,
  body: unknown,
  agent: http.Agent | false,
): { sent: Promise<void>; response: Promise<RawResponse> } {
  let markSent!: () => void;
  const sent = new Promise<void>((resolve) => (markSent = resolve));
  const response = new Promise<RawResponse>((resolve, reject) => {
    const req = http.request(url, { method, headers: json, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, at: Date.now() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('finish', markSent);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
  return { sent, response };
}

describe('the API as a process', function () {
  this.timeout(90_000);

  // Whatever a test leaves running (failed assertion, timeout) is killed before the next one.
  afterEach(killLeftovers);

  it('when PORT is set, then the API listens on that port and /ping answers 200 there', async () => {
    const port = await freePort();
    const app = await spawnApi({ PORT: String(port) });
    assert.equal(app.port, port);
    await app.api.get('/ping').expect(200);
    const res = await fetch(`http://127.0.0.1:${port}/ping`);
    assert.equal(res.status, 200);
    assert.equal(await app.stop(), 0);
  });

  // How fast it starts is for benchmarks (a loaded CI machine varies widely); what must hold is that
  // the first request after the listening line is answered.
  it('when the process starts, then /ping answers 200 as soon as it listens', async () => {
    const app = await spawnApi();
    await app.api.get('/ping').expect(200);
    assert.equal(await app.stop(), 0);
  });

  it('when the database is unreachable at start, then the API still starts: /ping 200, /ping_db and /v1 503', async () => {
    const closedPort = await freePort();
    const app = await spawnApi({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/messenger_test`,
      DB_CONNECT_TIMEOUT_MS: '300',
    });
    await app.api.get('/ping').expect(200);
    await app.api.get('/ping_db').expect(503, { message: 'service-unavailable' });
    await app.api
      .post('/v1/auth/register')
      .send({ user_name: unique('user'), password: 'correct horse battery' })
      .expect(503, { message: 'service-unavailable' });
    assert.equal(await app.stop(), 0);
  });

  it('when SIGINT arrives, then the API stops cleanly with exit code 0', async () => {
    const app = await spawnApi();
    await app.api.get('/ping').expect(200);
    assert.equal(await app.stop('SIGINT'), 0);
    assert.ok(app.logs().some((line) => line.msg === 'stopped'));
  });

  it('when the API is stopped with SIGTERM and started again on the same data, then users, sessions and history survive', async () => {
    // Embedded profile: the PGlite folder must be flushed on SIGTERM; services: DATABASE_URL wins.
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'messenger-process-'));
    try {
      const first = await spawnApi({ DATA_DIR: dataDir });
      await migrated(first);
      const { user, chatId, memberId } = await memberOfNewChat(first.api);
      const text = unique('kept across restarts');
      const messageId = await send(first.api, user, chatId, memberId, text);
      const code = await first.stop('SIGTERM');
      const problems = first.logs().filter((line) => line.level >= 40);
      assert.equal(code, 0, `exit code ${code}; warnings and errors: ${JSON.stringify(problems)}`);
      assert.ok(first.logs().some((line) => line.msg === 'stopped'));

      const second = await spawnApi({ DATA_DIR: dataDir });
      await migrated(second);
      // The session of the first run is still valid…
      await second.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200);
      // …and the password still logs in.
      const login = await second.api
        .post('/v1/auth/login')
        .send({ user_name: user.userName, password: user.password })
        .expect(200);
      const auth = { Authorization: `session_id ${login.body.session_id}` };
      const history = await second.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(auth).expect(200);
      assert.deepEqual(
        (history.body.messages as { message_id: string; text: string; user_id: string }[]).map((m) => [
          m.message_id,
          m.text,
          m.user_id,
        ]),
        [[messageId, text, memberId]],
      );
      await second.api
        .post('/v1/auth/register')
        .send({ user_name: user.userName, password: user.password })
        .expect(409, { message: 'user-already-exists' });
      assert.equal(await second.stop('SIGTERM'), 0);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  for (const [setting, value] of [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['BCRYPT_COST', '3'],
    ['DATABASE_URL', 'mysql://root@127.0.0.1/messenger'],
    ['AUTH_DISABLED', 'maybe'],
  ] as const) {
    it(`when ${setting}=${value}, then the process exits 1 with one stderr line naming ${setting}`, async () => {
      const exit = await runToExit({ [setting]: value });
      assert.equal(exit.code, 1, `exit code; stderr: ${exit.stderr}`);
      const lines = exit.stderr.split('\n');
      assert.equal(lines.pop(), '', 'stderr ends with a newline');
      assert.equal(lines.length, 1, `one line on stderr, got:\n${exit.stderr}`);
      assert.match(lines[0]!, new RegExp(`\\b${setting}\\b`));
      assert.ok(!exit.stdout.some((line) => line.includes('listening on')), 'never listened');
    });
  }

  /** Starts a login (bcrypt cost 12: ~200 ms) and sends SIGTERM while the server works on it. */
  async function signalDuringLogin(agent: http.Agent | false) {
    const app = await spawnApi({ BCRYPT_COST: '12' });
    await migrated(app);
    const credentials = { user_name: unique('user'), password: 'correct horse battery' };
    await app.api.post('/v1/auth/register').send(credentials).expect(201);

    const { sent, response } = rawRequest(`${app.url}/v1/auth/login`, 'POST', credentials, agent);
    await sent;
    await new Promise((resolve) => setTimeout(resolve, 80));
    const signalledAt = Date.now();
    app.child.kill('SIGTERM');
    const res = await response;
    const exit = await app.exited;
    return {
      app,
      res,
      exit,
      signalledAt,
      respondedMs: res.at - signalledAt,
      exitedMs: Date.now() - signalledAt,
    };
  }

  it('when SIGTERM arrives during a request, then the request still completes and the exit code is 0', async () => {
    const { app, res, exit, respondedMs, exitedMs } = await signalDuringLogin(false);
    assert.ok(respondedMs >= 0, 'the response came after SIGTERM, so it was in flight');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof (res.body as { session_id?: unknown }).session_id, 'string');
    assert.equal(exit.code, 0, `exit code; stderr: ${app.stderr()}`);
    assert.ok(exitedMs < 5_000, `shutdown took ${exitedMs} ms`);
    const order = app.logs().map((line) => line.msg);
    assert.ok(
      order.indexOf('shutting down') < order.lastIndexOf('request'),
      'request ended after the signal',
    );
    assert.ok(order.includes('stopped'));
  });

  it('when SIGTERM arrives during a request on a keep-alive connection, then the process exits right after answering', async () => {
    // Proxies and load balancers keep connections open for a minute; the stop must not wait for them
    // (a container stop allows 10 s by default, which is also the default SHUTDOWN_TIMEOUT_MS).
    const agent = new http.Agent({ keepAlive: true, timeout: 60_000 });
    try {
      const { app, res, exit, respondedMs, exitedMs } = await signalDuringLogin(agent);
      assert.ok(respondedMs >= 0, 'the response came after SIGTERM, so it was in flight');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(exit.code, 0, `exit code; stderr: ${app.stderr()}`);
      assert.ok(
        exitedMs - respondedMs < 2_000,
        `exited ${exitedMs - respondedMs} ms after answering (the idle keep-alive socket held it open)`,
      );
    } finally {
      agent.destroy();
    }
  });

  it('when users register, log in and call the API, then the logs never contain a password or a session token', async () => {
    const app = await spawnApi({ LOG_LEVEL: 'trace' });
    await migrated(app);
    const user = await registerAndLogin(app.api);
    const chatId = await createChat(app.api, user);
    await join(app.api, user, chatId);
    const wrongPassword = 'not-the-password-' + unique('pw');
    await app.api
      .post('/v1/auth/login')
      .send({ user_name: user.userName, password: wrongPassword })
      .expect(401, { message: 'invalid-credentials' });
    const otherPassword = 'never-logged-' + unique('pw');
    await app.api
      .post('/v1/auth/register')
      .set(json)
      .send(`{"user_name": "x", "password": "${otherPassword}"`)
      .expect(400)
      .expect(badParameters());
    await app.api
      .get(`/v1/chats/${chatId}/messages?limit=5`)
      .set({ Authorization: `Bearer ${user.token}` })
      .expect(200);
    await app.api.post('/v1/auth/logout').set(user.auth).expect(200);
    await app.api
      .get(`/v1/chats/${chatId}/messages?limit=5`)
      .set(user.auth)
      .expect(401, { message: 'invalid-session-id' });
    assert.equal(await app.stop(), 0);

    const output = app.lines.join('\n') + app.stderr();
    assert.ok(app.logs().filter((line) => line.msg === 'request').length >= 7, 'requests were logged');
    for (const secret of [user.password, wrongPassword, otherPassword, user.token]) {
      assert.ok(!output.includes(secret), `the logs contain a secret: ${secret}`);
    }
  });

  it('when AUTH_DISABLED=true, then a warning is logged at start and anonymous callers are served', async () => {
    const app = await spawnApi({ AUTH_DISABLED: 'true' });
    const logs = app.logs();
    const warning = logs.findIndex((line) => line.level >= 40 && /AUTH_DISABLED/.test(line.msg ?? ''));
    assert.ok(warning >= 0, `no warning about AUTH_DISABLED in:\n${app.lines.join('\n')}`);
    assert.ok(warning < logs.findIndex(isListening), 'the warning comes at start');
    await migrated(app);
    await app.api
      .post('/v1/chats')
      .send({ chat_name: unique('open chat') })
      .expect(201);
    assert.equal(await app.stop(), 0);
  });

  describe('stopped at points of its start', () => {
    // Authentication off: a search needs no user, so it reaches the job queue as soon as the schema is there.
    const env = { AUTH_DISABLED: 'true', SEARCH_QUEUE: freshQueueName() };

    after(async () => {
      if (profile.env.AMQP_URL) await Broker.deleteQueues(profile.env.AMQP_URL, [env.SEARCH_QUEUE]);
    });

    it('when SIGTERM arrives at the first log line, then the API stops with exit code 0 and nothing on stderr', async () => {
      const app = launch(env);
      await app.waitForLog(isStarting, START_MS);
      await assertStopsCleanly(app);
    });

    it('when SIGTERM arrives as the API starts listening, then it stops with exit code 0 and nothing on stderr', async () => {
      const app = launch(env);
      await app.waitForLog(isListening, START_MS);
      await assertStopsCleanly(app);
    });

    it('when SIGTERM arrives right after the first answer of /v1, then the API stops with exit code 0 and nothing on stderr', async () => {
      const app = launch(env);
      assert.ok([201, 503].includes(await search(app)));
      await assertStopsCleanly(app);
    });

    it('when SIGTERM arrives once the API is ready and has taken a search, then it stops with exit code 0 and nothing on stderr', async () => {
      const app = launch(env);
      await app.waitForLog(isMigrated, START_MS);
      assert.equal(await search(app), 201);
      await assertStopsCleanly(app);
    });

    if (profile.env.AMQP_URL) {
      it('when RabbitMQ refuses connections and SIGTERM arrives after a refused search, then the API stops at once with exit code 0', async () => {
        const app = launch({ ...env, AMQP_URL: `amqp://guest:guest@127.0.0.1:${await freePort()}` });
        await app.waitForLog(isMigrated, START_MS);
        assert.equal(await search(app), 503);
        const signalledAt = Date.now();
        await assertStopsCleanly(app);
        const stopMs = Date.now() - signalledAt;
        // Not a speed bound: waiting for a broker that never comes would take the 15 s shutdown bound.
        assert.ok(stopMs < 10_000, `stopped ${stopMs} ms after the signal`);
      });

      describe('the consumer', () => {
        it('when SIGTERM arrives at its first log line, then the consumer stops with exit code 0 and nothing on stderr', async () => {
          const consumer = launch(env, 'consumer');
          await consumer.waitForLog(isStarting, START_MS);
          await assertStopsCleanly(consumer);
        });

        it('when SIGTERM arrives as the consumer has started, then it stops with exit code 0 and nothing on stderr', async () => {
          const consumer = launch(env, 'consumer');
          await consumer.waitForLog(isConsumerStarted, START_MS);
          await assertStopsCleanly(consumer);
        });

        it('when RabbitMQ accepts connections but never answers, then a SIGTERM still stops the consumer with exit code 0', async () => {
          const target = new URL(profile.env.AMQP_URL!);
          const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
          await proxy.start();
          proxy.freeze();
          try {
            const consumer = launch(
              { ...env, AMQP_URL: proxy.proxiedUrl(profile.env.AMQP_URL!) },
              'consumer',
            );
            await consumer.waitForLog(isConsumerStarted, START_MS);
            await assertStopsCleanly(consumer);
          } finally {
            await proxy.close();
          }
        });
      });
    }
  });

  // Services profile only: these settings need a PostgreSQL server (the one of DATABASE_URL).
  if (profile.services) {
    it('when POSTGRES_HOSTS lists unreachable hosts first, then the first reachable one is used', async () => {
      const target = new URL(process.env.DATABASE_URL!);
      const port = Number(target.port || 5432);
      const unreachable = ['127.0.0.2'];
      for (const host of unreachable) {
        assert.equal(await accepts(host, port), false, `precondition: nothing listens on ${host}:${port}`);
      }
      const app = await spawnApi({
        DATABASE_URL: undefined,
        POSTGRES_HOSTS: [...unreachable, target.hostname].join(','),
        POSTGRES_PORT: String(port),
        POSTGRES_DB: decodeURIComponent(target.pathname.slice(1)),
        POSTGRES_USER: decodeURIComponent(target.username) || 'postgres',
        POSTGRES_PWD: target.password ? decodeURIComponent(target.password) : undefined,
      });
      assert.equal(app.logs().find(isListening)?.database, 'postgres');
      await migrated(app);
      await app.api.get('/ping_db').expect(200);
      await app.api
        .post('/v1/auth/register')
        .send({ user_name: unique('user'), password: 'correct horse battery' })
        .expect(201);
      assert.equal(await app.stop(), 0);
    });
  }
});
