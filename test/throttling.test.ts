import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { ExpiringMap } from '../src/infra/cache.js';
import { MemoryCounter } from '../src/modules/throttling/counter.js';
import { startApp, type Api, type TestApp } from './support/app.js';
import { registerAndLogin, send, memberOfNewChat } from './support/fixtures.js';
import { describeSingleRedis, profile } from './support/profile.js';
import { eventually, killLeftovers, spawnApi, type SpawnedApi } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

const RATE_HEADERS = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'];

/**
 * A client address no other test (or earlier run sharing the same Redis) uses, so budgets start
 * full; it reaches the app as X-Forwarded-For, which counts only with TRUST_PROXY=true.
 */
const freshIp = () => `2001:db8::${randomBytes(8).toString('hex').match(/.{4}/g)!.join(':')}`;

/** `api` as seen from another client address (X-Forwarded-For on every request). */
function from(api: Api, ip: string): Api {
  const via = (method: keyof Api) => (url: string) => api[method](url).set('X-Forwarded-For', ip);
  return {
    get: via('get'),
    post: via('post'),
    put: via('put'),
    patch: via('patch'),
    delete: via('delete'),
    options: via('options'),
  };
}

function rateHeaders(res: Response): { limit: number; remaining: number; reset: number } {
  for (const name of RATE_HEADERS)
    assert.match(String(res.headers[name]), /^\d+$/, `${name} on ${res.status}`);
  return {
    limit: Number(res.headers['ratelimit-limit']),
    remaining: Number(res.headers['ratelimit-remaining']),
    reset: Number(res.headers['ratelimit-reset']),
  };
}

function assertTooManyRequests(res: Response, windowSeconds: number): void {
  assert.equal(res.status, 429);
  assert.deepEqual(res.body, { message: 'request-limit-exceeded' });
  assert.match(res.headers['content-type'] ?? '', /application\/json/);
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= windowSeconds, `Retry-After ${res.headers['retry-after']}`);
  assert.equal(rateHeaders(res).remaining, 0);
}

describe('throttling', () => {
  const apps: TestApp[] = [];
  async function app(env: Record<string, string>): Promise<TestApp> {
    // The shipped defaults (the harness raises them for the other suites), then the test's own.
    const started = await startApp({
      TRUST_PROXY: 'true',
      RATE_LIMIT_MAX: '600',
      SEND_RATE_LIMIT_MAX: '60',
      LOGIN_FAIL_LIMIT_MAX: '10',
      LOGIN_RATE_LIMIT_MAX: '20',
      LOGIN_FAIL_NAME_MAX: '100',
      BCRYPT_QUEUE_MAX: '4',
      BCRYPT_PER_CLIENT_MAX: '2',
      ...env,
    });
    apps.push(started);
    return started;
  }
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((started) => started.close()));
  });

  it('when any request is answered, errors included, then it carries the RateLimit headers', async () => {
    const { api: server } = await app({ RATE_LIMIT_MAX: '50' });
    const api = from(server, freshIp());
    const user = await registerAndLogin(api);
    const answers = [
      await api.get('/ping').expect(200),
      await api.get('/v1/nothing-here').expect(404),
      await api.delete('/v1/chats').expect(405),
      await api.get(`/v1/chats/${randomUUID()}/messages?limit=1`).expect(401),
      await api.post('/v1/chats').set(user.auth).send({}).expect(400),
      await api.get(`/v1/chats/${randomUUID()}/messages?limit=1`).set(user.auth).expect(404),
    ];
    const anonymous = answers.slice(0, 4).map(rateHeaders);
    assert.deepEqual(
      anonymous.map(({ remaining }) => remaining),
      [47, 46, 45, 44],
      'register and login took the first two',
    );
    for (const { limit, reset } of anonymous) {
      assert.equal(limit, 50);
      assert.ok(reset >= 1 && reset <= 60);
    }
    // The user's own budget: the session decides, not the address.
    assert.deepEqual(
      answers.slice(4).map((res) => rateHeaders(res).remaining),
      [49, 48],
    );
  });

  it('when a client goes over RATE_LIMIT_MAX, then it gets 429 request-limit-exceeded with Retry-After', async () => {
    const { api: server } = await app({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '30000' });
    const api = from(server, freshIp());
    for (let left = 4; left >= 0; left--) {
      assert.equal(rateHeaders(await api.get('/ping').expect(200)).remaining, left);
    }
    assertTooManyRequests(await api.get('/ping'), 30);
    assertTooManyRequests(await api.post('/v1/auth/login').send({ user_name: 'x', password: 'y' }), 30);
    await from(server, freshIp()).get('/ping').expect(200);
  });

  it('when a caller has a session, then the budget is the user’s, whatever the address', async () => {
    const { api: server } = await app({ RATE_LIMIT_MAX: '5' });
    const ip = freshIp();
    const api = from(server, ip);
    const user = await registerAndLogin(api); // two anonymous requests from `ip`
    for (let i = 0; i < 5; i++) await from(server, freshIp()).get('/ping').set(user.auth).expect(200);
    assertTooManyRequests(await api.get('/ping').set(user.auth), 60);
    // The address keeps its own budget, and so does another user.
    assert.equal(rateHeaders(await api.get('/ping').expect(200)).remaining, 2);
    const other = await registerAndLogin(from(server, freshIp()));
    await api.get('/ping').set(other.auth).expect(200);
    // A session that does not work counts against the address.
    const bogus = { Authorization: 'session_id not-a-session' };
    assert.equal(rateHeaders(await api.get('/ping').set(bogus).expect(200)).remaining, 1);
  });

  it('when a user sends more than SEND_RATE_LIMIT_MAX messages, then sending answers 429 and reading goes on', async () => {
    const { api: server } = await app({ SEND_RATE_LIMIT_MAX: '2', SEND_RATE_LIMIT_WINDOW_MS: '20000' });
    const api = from(server, freshIp());
    const { user, chatId, memberId } = await memberOfNewChat(api);
    const post = () =>
      api.post(`/v1/chats/${chatId}/messages?user_id=${memberId}`).set(user.auth).send({ message: 'hi' });
    // The stricter budget is the one the headers show.
    const first = rateHeaders(await post().expect(201));
    assert.deepEqual([first.limit, first.remaining], [2, 1]);
    assert.ok(first.reset >= 1 && first.reset <= 21, `RateLimit-Reset ${first.reset}`);
    assert.equal(rateHeaders(await post().expect(201)).remaining, 0);
    assertTooManyRequests(await post(), 20);
    const history = await api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200);
    assert.equal(history.body.messages.length, 2);
    assert.equal(rateHeaders(history).limit, 600);
  });

  it('when one client fails LOGIN_FAIL_LIMIT_MAX logins for a name, then that client gets 429 for it, even with the right password', async () => {
    const { api: server } = await app({});
    const api = from(server, freshIp());
    const user = await registerAndLogin(api);
    const login = (password: string, client = api) =>
      client.post('/v1/auth/login').send({ user_name: user.userName, password });
    for (let i = 0; i < 10; i++) {
      await login(`wrong password ${i}`).expect(401, { message: 'invalid-credentials' });
    }
    assertTooManyRequests(await login(user.password), 900);
    // Other names from the same client are not affected.
    await registerAndLogin(api);
  });

  it('when a client guesses a name’s password, then the owner still logs in from another client', async () => {
    const { api: server } = await app({ LOGIN_FAIL_LIMIT_MAX: '3' });
    const owner = from(server, freshIp());
    const user = await registerAndLogin(owner);
    const attacker = from(server, freshIp());
    const login = (client: Api, password: string) =>
      client.post('/v1/auth/login').send({ user_name: user.userName, password });
    for (let i = 0; i < 3; i++) await login(attacker, `guess ${i}`).expect(401);
    assertTooManyRequests(await login(attacker, `guess 3`), 900);
    assertTooManyRequests(await login(attacker, user.password), 900);
    await login(owner, user.password).expect(200);
    await login(owner, user.password).expect(200);
  });

  it('when failures for a name from all clients pass LOGIN_FAIL_NAME_MAX, then attempts on it are delayed, not refused', async () => {
    const delayMs = 400;
    const { api: server } = await app({
      LOGIN_FAIL_LIMIT_MAX: '2',
      LOGIN_FAIL_NAME_MAX: '4',
      LOGIN_FAIL_DELAY_MS: String(delayMs),
    });
    const user = await registerAndLogin(from(server, freshIp()));
    const login = (client: Api, password: string) =>
      client.post('/v1/auth/login').send({ user_name: user.userName, password });
    // Three clients, two guesses each: six failures for the name, none over a client's own budget.
    for (let c = 0; c < 3; c++) {
      const client = from(server, freshIp());
      for (let i = 0; i < 2; i++) await login(client, `guess ${c}.${i}`).expect(401);
    }
    const begun = performance.now();
    await login(from(server, freshIp()), user.password).expect(200);
    // A lower bound only: the delay is a wait the server adds, however fast the machine.
    assert.ok(performance.now() - begun >= delayMs, `answered in ${performance.now() - begun} ms`);
    // Other names are not slowed.
    const other = await registerAndLogin(from(server, freshIp()));
    assert.ok(other.token);
  });

  it('when a client sends more than LOGIN_RATE_LIMIT_MAX logins, then it gets 429 whatever the names, and its other requests go on', async () => {
    const { api: server } = await app({ LOGIN_RATE_LIMIT_MAX: '5', RATE_LIMIT_MAX: '600' });
    const ip = freshIp();
    const api = from(server, ip);
    const user = await registerAndLogin(from(server, freshIp()));
    const attempt = (client: Api, userName: string, password = 'wrong password') =>
      client.post('/v1/auth/login').send({ user_name: userName, password });
    for (let i = 0; i < 5; i++) await attempt(api, `nobody-${randomUUID()}`).expect(401);
    assertTooManyRequests(await attempt(api, `nobody-${randomUUID()}`), 60);
    assertTooManyRequests(await attempt(api, user.userName, user.password), 60);
    // The general budget is separate: the client's other requests are served.
    await api.get('/ping').expect(200);
    await attempt(from(server, freshIp()), user.userName, user.password).expect(200);
  });

  it('when one client floods logins with random names, then the excess is refused fast (429/503) and another client logs in', async () => {
    // The shipped login bounds: 20 attempts per minute per client, 2 hashes per client at once.
    const { api: server } = await app({
      LOGIN_RATE_LIMIT_MAX: '20',
      BCRYPT_QUEUE_MAX: '4',
      BCRYPT_PER_CLIENT_MAX: '2',
    });
    const user = await registerAndLogin(from(server, freshIp()));
    const flooder = from(server, freshIp());
    const flood = Array.from({ length: 96 }, () =>
      flooder.post('/v1/auth/login').send({ user_name: `nobody-${randomUUID()}`, password: 'guess' }),
    );
    const other = from(server, freshIp());
    const [answers, login, ping] = await Promise.all([
      Promise.all(flood),
      other.post('/v1/auth/login').send({ user_name: user.userName, password: user.password }),
      other.get('/ping'),
    ]);
    assert.equal(login.status, 200);
    assert.equal(ping.status, 200);
    const count = (status: number) => answers.filter((res) => res.status === status).length;
    assert.deepEqual(
      answers.filter((res) => ![401, 429, 503].includes(res.status)).map((res) => res.status),
      [],
    );
    // At most the client's budget reached the password check; the rest never cost a hash.
    assert.ok(count(401) + count(503) <= 20, `401: ${count(401)}, 503: ${count(503)}`);
    assert.ok(count(429) >= 76, `429: ${count(429)}`);
    for (const res of answers.filter((answer) => answer.status === 503)) {
      assert.deepEqual(res.body, { message: 'service-unavailable' });
      assert.ok(Number(res.headers['retry-after']) >= 1);
    }
  });

  it('when a login succeeds, then the failures before it no longer count', async () => {
    const { api: server } = await app({ LOGIN_FAIL_LIMIT_MAX: '3' });
    const api = from(server, freshIp());
    const user = await registerAndLogin(api);
    const login = (password: string) =>
      api.post('/v1/auth/login').send({ user_name: user.userName, password });
    await login('wrong password').expect(401);
    await login('wrong password').expect(401);
    await login(user.password).expect(200);
    await login('wrong password').expect(401);
    await login('wrong password').expect(401);
    await login('wrong password').expect(401);
    assertTooManyRequests(await login(user.password), 900);
  });

  it('when TRUST_PROXY=true, then each X-Forwarded-For address has its own budget', async () => {
    const { api } = await app({ RATE_LIMIT_MAX: '2' });
    const [a, b] = [freshIp(), freshIp()];
    await from(api, a).get('/ping').expect(200);
    await from(api, a).get('/ping').expect(200);
    assertTooManyRequests(await from(api, a).get('/ping'), 60);
    await from(api, b).get('/ping').expect(200);
  });

  it('when TRUST_PROXY=true, then the client address is taken TRUST_PROXY_HOPS entries from the right of X-Forwarded-For', async () => {
    const { api } = await app({ RATE_LIMIT_MAX: '3' });
    const real = freshIp();
    // What a client writes itself comes first; the proxy appends the address it saw.
    const spoofing = () => api.get('/ping').set('X-Forwarded-For', `${freshIp()}, ${freshIp()}, ${real}`);
    for (let left = 2; left >= 0; left--)
      assert.equal(rateHeaders(await spoofing().expect(200)).remaining, left);
    assertTooManyRequests(await spoofing(), 60);

    // Two proxies in front: the second entry from the right is the client.
    const { api: twoHops } = await app({ RATE_LIMIT_MAX: '2', TRUST_PROXY_HOPS: '2' });
    const client = freshIp();
    const via = () => twoHops.get('/ping').set('X-Forwarded-For', `${freshIp()}, ${client}, 10.0.0.1`);
    await via().expect(200);
    await via().expect(200);
    assertTooManyRequests(await via(), 60);
  });

  it('when more addresses than the general counter holds show up, then a client’s login failures stay counted', async function () {
    // Memory counters only: Redis keys are not evicted to make room for others.
    this.timeout(60_000);
    const { api: server, service } = await app({
      REDIS_URL: '',
      AMQP_URL: '',
      LOGIN_FAIL_LIMIT_MAX: '2',
      RATE_LIMIT_MAX: '1000000',
    });
    const ip = freshIp();
    const api = from(server, ip);
    const user = await registerAndLogin(api);
    const login = (password: string) =>
      api.post('/v1/auth/login').send({ user_name: user.userName, password });
    await login('wrong password').expect(401);
    await login('wrong password').expect(401);
    assertTooManyRequests(await login(user.password), 900);

    // 105k addresses through the general budget (the throttling module's own middleware, as the
    // app runs it; over HTTP this would take minutes).
    const general = service.modules.find((module) => module.name === 'throttling')!.middleware![0]!;
    for (let i = 0; i < 105_000; i++) {
      const headers: Record<string, string> = {};
      const ctx = {
        ip: `198.51.${i >> 8}.${i & 255}`,
        state: {},
        get: () => '',
        set: (values: Record<string, string>) => Object.assign(headers, values),
        response: { get: (name: string) => headers[name] ?? '' },
      };
      await general(ctx as never, () => Promise.resolve());
    }
    assertTooManyRequests(await login(user.password), 900);
  });

  it('when TRUST_PROXY is off, then X-Forwarded-For is ignored: the socket address is the client', async () => {
    // A window of a day: nothing leaves the (possibly shared) budget of 127.0.0.1 between two requests.
    const { api } = await app({
      TRUST_PROXY: 'false',
      RATE_LIMIT_MAX: '10000000',
      RATE_LIMIT_WINDOW_MS: '86400000',
    });
    const first = rateHeaders(await from(api, freshIp()).get('/ping').expect(200));
    const second = rateHeaders(await from(api, freshIp()).get('/ping').expect(200));
    assert.equal(second.remaining, first.remaining - 1);
  });

  it('when throttling is not in APPS, then there are no RateLimit headers and no budgets', async () => {
    const { api } = await app({
      APPS: 'health,cache,auth,chats,messages,docs',
      RATE_LIMIT_MAX: '1',
      SEND_RATE_LIMIT_MAX: '1',
      LOGIN_FAIL_LIMIT_MAX: '1',
    });
    const { user, chatId, memberId } = await memberOfNewChat(api);
    await send(api, user, chatId, memberId, 'one');
    await send(api, user, chatId, memberId, 'two');
    const login = (password: string) =>
      api.post('/v1/auth/login').send({ user_name: user.userName, password });
    await login('wrong password').expect(401);
    await login('wrong password').expect(401);
    await login(user.password).expect(200);
    for (const res of [await api.get('/ping').expect(200), await api.get('/v1/nothing-here').expect(404)]) {
      for (const name of RATE_HEADERS) assert.equal(res.headers[name], undefined);
    }
  });

  describe('the memory store', () => {
    it('when windows end, then their entries are swept on later writes (the driver’s Map never evicts)', () => {
      let now = 1_000_000;
      const counts = new ExpiringMap<{ reset: number }>({
        capacity: 1000,
        sweepEveryMs: 10_000,
        expiresAt: (entry) => entry.reset * 1000,
        now: () => now,
      });
      for (let i = 0; i < 500; i++) counts.set(`requests:ip:${i}`, { reset: (now + 60_000) / 1000 });
      assert.equal(counts.size, 500);
      now += 61_000;
      counts.set('requests:ip:new', { reset: (now + 60_000) / 1000 });
      assert.deepEqual([...counts.keys()], ['requests:ip:new']);
    });

    it('when more clients than its capacity show up within a window, then the oldest entries go', () => {
      const counts = new ExpiringMap<{ reset: number }>({ capacity: 3, sweepEveryMs: 10_000 });
      for (const key of ['a', 'b', 'c', 'd', 'e']) counts.set(key, { reset: Date.now() / 1000 + 60 });
      assert.deepEqual([...counts.keys()], ['c', 'd', 'e']);
    });

    it('when the memory counter is used, then its entries follow koa-ratelimit’s fixed window', async () => {
      const counter = new MemoryCounter(1000);
      const policy = { name: 'test', max: 2, windowMs: 1000 };
      const verdicts = [];
      for (let i = 0; i < 3; i++) verdicts.push(await counter.take(policy, 'ip:x'));
      assert.deepEqual(
        verdicts.map(({ allowed, remaining }) => [allowed, remaining]),
        [
          [true, 1],
          [true, 0],
          [false, 0],
        ],
      );
      await new Promise((resolve) => setTimeout(resolve, 1100));
      counter.counts.sweep();
      assert.equal(counter.counts.size, 0);
      assert.equal((await counter.take(policy, 'ip:x')).allowed, true);
    });
  });

  // Services profile: budgets live in Redis, shared by every instance.
  if (profile.services && profile.env.REDIS_URL) {
    const redisUrl = profile.env.REDIS_URL;

    it('when two instances share Redis, then a budget spent on A is spent on B', async () => {
      const a = await app({ RATE_LIMIT_MAX: '3', LOGIN_FAIL_LIMIT_MAX: '2' });
      const b = await app({ RATE_LIMIT_MAX: '3', LOGIN_FAIL_LIMIT_MAX: '2' });
      const ip = freshIp();
      await from(a.api, ip).get('/ping').expect(200);
      await from(b.api, ip).get('/ping').expect(200);
      await from(a.api, ip).get('/ping').expect(200);
      assertTooManyRequests(await from(b.api, ip).get('/ping'), 60);
      assertTooManyRequests(await from(a.api, ip).get('/ping'), 60);

      // The failed-login budget of one client for one name (LOGIN_FAIL_LIMIT_MAX=2), seen by both.
      const client = freshIp();
      const user = await registerAndLogin(from(a.api, freshIp()));
      const login = (api: Api) =>
        from(api, client)
          .post('/v1/auth/login')
          .send({ user_name: user.userName, password: 'wrong password' });
      await login(a.api).expect(401);
      await login(b.api).expect(401);
      assertTooManyRequests(await login(a.api), 900);
    });

    describeSingleRedis('when Redis goes away', function () {
      this.timeout(60_000);
      const target = new URL(redisUrl);
      const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      let spawned: SpawnedApi;
      let api: Api;

      before(async () => {
        await proxy.start();
        spawned = await spawnApi({
          REDIS_URL: proxy.proxiedUrl(redisUrl),
          TRUST_PROXY: 'true',
          RATE_LIMIT_MAX: '600',
        });
        api = from(spawned.api, freshIp());
      });

      after(async () => {
        await spawned.stop();
        await proxy.close();
        await killLeftovers();
      });

      const started = (line: { msg?: string }) => line.msg === 'rate limits unreachable: outage started';
      const ended = (line: { msg?: string }) => line.msg === 'rate limits reachable again: outage ended';

      it('then requests are served fast without RateLimit headers, one log line marks the outage each way, and budgets come back', async () => {
        await eventually(
          async () => (await api.get('/ping').expect(200)).headers['ratelimit-limit'] === '600',
        );
        await proxy.cut();
        for (let i = 0; i < 5; i++) {
          const begun = performance.now();
          const res = await api.get('/ping').expect(200);
          assert.ok(performance.now() - begun < 1000);
          assert.equal(res.headers['ratelimit-limit'], undefined);
        }
        await spawned.waitForLog(started);

        await proxy.restore();
        await eventually(
          async () => (await api.get('/ping').expect(200)).headers['ratelimit-limit'] === '600',
          10_000,
        );
        await spawned.waitForLog(ended);
        assert.equal(spawned.logs().filter(started).length, 1);
        assert.equal(spawned.logs().filter(ended).length, 1);
      });

      it('then a Redis that stops answering (no reset, no refusal) costs each request well under a second', async () => {
        await eventually(
          async () => (await api.get('/ping').expect(200)).headers['ratelimit-limit'] === '600',
        );
        proxy.freeze();
        for (let i = 0; i < 5; i++) {
          const begun = performance.now();
          await api.get('/ping').expect(200);
          assert.ok(performance.now() - begun < 1000, `took ${performance.now() - begun} ms`);
        }
        await proxy.cut();
        await proxy.restore();
        await eventually(
          async () => (await api.get('/ping').expect(200)).headers['ratelimit-limit'] === '600',
          10_000,
        );
      });
    });
  }
});
