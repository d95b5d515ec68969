import assert from 'node:assert/strict';
import { sharedApp, type TestApp } from './support/app.js';

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

  it('when a route does not exist, then it answers 404 not-found', async () => {
    await app.api.get('/v1/nothing-here').expect(404, { message: 'not-found' });
  });

  it('when a route exists but not for that method, then it answers 405 with Allow', async () => {
    const res = await app.api.delete('/v1/chats').expect(405, { message: 'method-not-allowed' });
    assert.equal(res.headers.allow, 'POST');
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
