import assert from 'node:assert/strict';
import { sharedApp, type TestApp } from './support/app.js';
import { createChat, join, registerAndLogin, unique } from './support/fixtures.js';
import { createTask, finished } from './support/search-helpers.js';

/** The value of one sample of /metrics, 0 when absent. */
async function sample(app: TestApp, line: RegExp): Promise<number> {
  const res = await app.api.get('/metrics').expect(200);
  const found = res.text.split('\n').find((text) => line.test(text));
  return found ? Number(found.slice(found.lastIndexOf(' ') + 1)) : 0;
}

describe('health and docs', () => {
  let app: TestApp;
  before(async () => {
    app = await sharedApp();
  });

  it('when /ping is called, then it answers 200', async () => {
    await app.api.get('/ping').expect(200, { status: 'ok' });
  });

  it('when the database answers, then /ping_db answers 200', async () => {
    await app.api.get('/ping_db').expect(200, { status: 'ok' });
  });

  it('when /metrics is scraped, then it shows request counts by route pattern', async () => {
    await app.api.get('/ping').expect(200);
    const res = await app.api.get('/metrics').expect(200);
    assert.match(res.text, /http_requests_total\{method="GET",route="\/ping",status="200"\} \d+/);
  });

  it('when a handler throws a 400, 401 or 409, then /metrics counts that status, not 404', async () => {
    const user = unique('metrics');
    const login = /^http_requests_total\{method="POST",route="\/v1\/auth\/login",status="401"\}/;
    const register409 = /^http_requests_total\{method="POST",route="\/v1\/auth\/register",status="409"\}/;
    const register400 = /^http_requests_total\{method="POST",route="\/v1\/auth\/register",status="400"\}/;
    const before = await Promise.all([login, register409, register400].map((line) => sample(app, line)));
    await app.api.post('/v1/auth/login').send({ user_name: user, password: 'wrong password' }).expect(401);
    await app.api.post('/v1/auth/register').send({ user_name: user, password: 'correct horse' }).expect(201);
    await app.api.post('/v1/auth/register').send({ user_name: user, password: 'correct horse' }).expect(409);
    await app.api.post('/v1/auth/register').send({ user_name: '', password: 'correct horse' }).expect(400);
    const after = await Promise.all([login, register409, register400].map((line) => sample(app, line)));
    assert.deepEqual(
      after.map((value, i) => value - before[i]!),
      [1, 1, 1],
    );
  });

  it('when the backends answer, then /metrics shows each one reachable', async () => {
    const res = await app.api.get('/metrics').expect(200);
    assert.match(res.text, /^messenger_dependency_up\{dependency="database"\} 1$/m);
    if (app.config.redisUrl) {
      assert.match(res.text, /^messenger_dependency_up\{dependency="cache"\} 1$/m);
      assert.match(res.text, /^messenger_dependency_up\{dependency="rate limits"\} 1$/m);
      assert.match(res.text, /^messenger_dependency_up\{dependency="search results"\} 1$/m);
    }
    if (app.config.amqpUrl)
      assert.match(res.text, /^messenger_dependency_up\{dependency="message broker"\} 1$/m);
  });

  it('when history is read twice, then /metrics counts a cache miss and a hit', async () => {
    const alice = await registerAndLogin(app.api);
    const chatId = await createChat(app.api, alice);
    await join(app.api, alice, chatId);
    const hit = /^messenger_cache_reads_total\{cache="history",result="HIT"\}/;
    const miss = /^messenger_cache_reads_total\{cache="history",result="MISS"\}/;
    const [hits, misses] = [await sample(app, hit), await sample(app, miss)];
    await app.api
      .get(`/v1/chats/${chatId}/messages?limit=10`)
      .set(alice.auth)
      .expect(200)
      .expect('X-Cache', 'MISS');
    await app.api
      .get(`/v1/chats/${chatId}/messages?limit=10`)
      .set(alice.auth)
      .expect(200)
      .expect('X-Cache', 'HIT');
    assert.equal(await sample(app, miss), misses + 1);
    assert.equal(await sample(app, hit), hits + 1);
  });

  it('when this process runs a search job, then /metrics counts it by outcome', async function () {
    if (app.config.amqpUrl) this.skip(); // jobs run in the consumer processes then, not here
    const alice = await registerAndLogin(app.api);
    const success = /^messenger_search_jobs_total\{outcome="success"\}/;
    const before = await sample(app, success);
    const taskId = await createTask(app, alice, { message: 'anything at all' });
    assert.equal((await finished(app, alice, taskId)).status, 'SUCCESS');
    assert.equal(await sample(app, success), before + 1);
  });

  it('when a route does not exist, then it answers 404 not-found', async () => {
    await app.api.get('/v1/nothing-here').expect(404, { message: 'not-found' });
  });

  it('when a route exists but not for that method, then it answers 405 with Allow', async () => {
    const res = await app.api.delete('/v1/chats').expect(405, { message: 'method-not-allowed' });
    assert.deepEqual(String(res.headers.allow).split(', ').sort(), ['GET', 'HEAD', 'POST']);
  });

  it('when /docs is opened, then Swagger UI loads from local assets only', async () => {
    const page = await app.api.get('/docs').expect(200).expect('Content-Type', /html/);
    const scripts = [...page.text.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(scripts.length >= 2);
    for (const src of scripts) {
      assert.ok(src.startsWith('/docs/assets/'), `script from ${src}`);
      const asset = await app.api.get(src).expect(200);
      assert.ok(Number(asset.headers['content-length'] ?? asset.text.length) > 1000);
    }
    await app.api.get('/docs/assets/swagger-ui.min.css').expect(200).expect('Content-Type', /css/);
    await app.api.get('/docs/assets/package.json').expect(404);
  });

  it('when /swagger.yml is fetched, then it is the OpenAPI contract', async () => {
    const res = await app.api.get('/swagger.yml').expect(200);
    assert.match(res.text, /^openapi: 3\./m);
  });
});
