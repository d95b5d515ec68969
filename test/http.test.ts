import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import pg from 'pg';
import { sharedApp, startApp, type TestApp } from './support/app.js';
import { badParameters, createChat, join, registerAndLogin, type User, unique } from './support/fixtures.js';
import { profile } from './support/profile.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What no error body may show: stack traces, SQL, the request's password. */
function assertNoLeak(text: string, secrets: string[] = []): void {
  for (const word of ['stack', 'SELECT', 'INSERT', ' at ', '.ts:', '.js:', ...secrets]) {
    assert.ok(!text.toLowerCase().includes(word.toLowerCase()), `error body leaks "${word}": ${text}`);
  }
}

/** POSTs a body in chunks without Content-Length (Transfer-Encoding: chunked) to a listening app. */
async function postChunked(
  port: number,
  path: string,
  headers: Record<string, string>,
  chunks: string[],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

/** Runs `fn` with the app listening on a free local port. */
async function withServer<T>(app: TestApp, fn: (port: number) => Promise<T>): Promise<T> {
  const handle = app.service.app.callback();
  const server = http.createServer((req, res) => void handle(req, res)).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    return await fn((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Sends bytes exactly as given (no header added by a client library); returns the raw response. */
async function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // No half-close: the request asks for `Connection: close`, so the server ends the exchange.
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(request));
    let response = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (response += chunk));
    socket.on('end', () => resolve(response));
    socket.on('error', reject);
  });
}

/**
 * An app on a database of its own, which a test may damage: a fresh in-memory PGlite on the embedded
 * profile, a scratch database on the services profile's server (dropped again by `close`).
 */
async function isolatedApp(): Promise<TestApp> {
  const url = profile.env.DATABASE_URL;
  if (!url) return startApp();
  const name = `messenger_scratch_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE "${name}"`);
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  const app = await startApp({ DATABASE_URL: scratch.toString() });
  return {
    ...app,
    close: async () => {
      await app.close();
      await run(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

describe('http', () => {
  let app: TestApp;
  let alice: User;
  before(async () => {
    app = await sharedApp();
    alice = await registerAndLogin(app.api);
  });

  describe('body size', () => {
    let small: TestApp;
    let user: User;
    before(async () => {
      small = await startApp({ MAX_BODY_BYTES: '2048' });
      user = await registerAndLogin(small.api);
    });
    after(async () => {
      await small.close();
    });

    it('when a body is over MAX_BODY_BYTES, then it answers 413 payload-too-large', async () => {
      const body = JSON.stringify({ chat_name: 'big', padding: 'x'.repeat(5000 - 40) });
      assert.ok(Buffer.byteLength(body) >= 4990 && Buffer.byteLength(body) <= 5000);
      await small.api
        .post('/v1/chats')
        .set(user.auth)
        .set('Content-Type', 'application/json')
        .send(body)
        .expect(413, { message: 'payload-too-large' });
    });

    it('when a body is just under MAX_BODY_BYTES, then it is served', async () => {
      const body = JSON.stringify({ chat_name: unique('fits'), padding: 'x'.repeat(1900) });
      assert.ok(Buffer.byteLength(body) < 2048);
      await small.api
        .post('/v1/chats')
        .set(user.auth)
        .set('Content-Type', 'application/json')
        .send(body)
        .expect(201);
    });

    it('when a body over MAX_BODY_BYTES is sent chunked without Content-Length, then it answers 413', async () => {
      const res = await withServer(small, (port) => {
        const chunks = ['{"chat_name":"big","padding":"', ...Array<string>(10).fill('y'.repeat(500)), '"}'];
        return postChunked(
          port,
          '/v1/chats',
          { ...user.auth, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
          chunks,
        );
      });
      assert.equal(res.status, 413);
      assert.deepEqual(JSON.parse(res.body), { message: 'payload-too-large' });
    });
  });

  describe('body format', () => {
    it('when a body is sent as text/plain, then it answers 415 unsupported-media-type', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .set('Content-Type', 'text/plain')
        .send('{"chat_name":"plain"}')
        .expect(415, { message: 'unsupported-media-type' });
    });

    it('when a register body is sent as a form, then it answers 415 unsupported-media-type', async () => {
      await app.api
        .post('/v1/auth/register')
        .type('form')
        .send({ user_name: unique('form'), password: 'correct horse battery' })
        .expect(415, { message: 'unsupported-media-type' });
    });

    it('when the JSON content type has a charset, then the body is accepted', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .set('Content-Type', 'application/json; charset=utf-8')
        .send(JSON.stringify({ chat_name: unique('charset') }))
        .expect(201);
    });

    it('when the JSON is malformed, then it answers 400 bad-parameters', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .set('Content-Type', 'application/json')
        .send('{"chat_name": "broken"')
        .expect(400)
        .expect(badParameters());
    });

    it('when there is no body and no Content-Length or Content-Type, then it answers 400 bad-parameters', async () => {
      const res = await withServer(app, (port) =>
        rawRequest(
          port,
          `POST /v1/chats HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${alice.auth.Authorization}\r\nConnection: close\r\n\r\n`,
        ),
      );
      assert.match(res, /^HTTP\/1\.1 400 /);
      assert.match(res, /\{"message":"bad-parameters","detail":"a JSON body is required"\}$/);
    });

    it('when a POST has no body (Content-Length: 0, no Content-Type), then it answers 400 bad-parameters', async () => {
      // What supertest, fetch() and most clients send for a POST without a body.
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .set('Content-Length', '0')
        .expect(400)
        .expect(badParameters());
    });

    it('when the body is empty with a JSON content type, then it answers 400 bad-parameters', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .set('Content-Type', 'application/json')
        .send('')
        .expect(400)
        .expect(badParameters());
    });

    it('when the body is a JSON array, then it answers 400 bad-parameters', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .send([{ chat_name: 'in an array' }])
        .expect(400)
        .expect(badParameters());
    });

    it('when the body is a JSON string, then it answers 400 bad-parameters', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .set('Content-Type', 'application/json')
        .send('"just a string"')
        .expect(400)
        .expect(badParameters());
    });

    it('when the body is JSON null, then it answers 400 bad-parameters', async () => {
      await app.api
        .post('/v1/auth/register')
        .set('Content-Type', 'application/json')
        .send('null')
        .expect(400)
        .expect(badParameters());
    });
  });

  describe('error bodies', () => {
    it('when requests fail in many ways, then no error body shows a stack, SQL or the password', async () => {
      const password = `pw-${unique('leak')}`;
      const name = unique('leaky');
      const responses = [
        await app.api
          .post('/v1/auth/register')
          .set('Content-Type', 'application/json')
          .send(`{"user_name": "${name}", "password": "${password}"`)
          .expect(400),
        await app.api
          .post('/v1/auth/register')
          .send({ user_name: name, password: password.repeat(10) })
          .expect(400),
        await app.api
          .post('/v1/auth/register')
          .send({ user_name: `${name}\u0000`, password })
          .expect(400),
        await app.api.post('/v1/auth/login').send({ user_name: name, password }).expect(401),
        await app.api.post('/v1/chats').set('Authorization', `session_id ${password}`).send({}).expect(401),
        await app.api
          .post('/v1/chats')
          .set(alice.auth)
          .send({ chat_name: { $where: 'SELECT 1' } })
          .expect(400),
        await app.api
          .post(`/v1/chats/'%20OR%201=1--/users`)
          .set(alice.auth)
          .send({ user_name: 'x' })
          .expect(404),
      ];
      await app.api.post('/v1/auth/register').send({ user_name: name, password }).expect(201);
      responses.push(await app.api.post('/v1/auth/register').send({ user_name: name, password }).expect(409));
      responses.push(
        await app.api.post('/v1/auth/login').send({ user_name: name, password: 'wrong-pass' }).expect(401),
      );
      for (const res of responses) {
        assert.equal(typeof res.body.message, 'string');
        assertNoLeak(res.text, [password]);
      }
    });

    describe('when the database fails unexpectedly', () => {
      let broken: TestApp;
      let user: User;
      before(async function () {
        this.timeout(60_000);
        broken = await isolatedApp();
        user = await registerAndLogin(broken.api);
        // A schema the code does not expect: every query on sessions now fails with an SQL error.
        await broken.service.db.knex.schema.renameTable('sessions', 'sessions_gone');
      });
      after(async () => {
        await broken.close();
      });

      it('when a query fails, then it answers 500 internal-error and shows no details', async () => {
        const res = await broken.api
          .post('/v1/auth/login')
          .send({ user_name: user.userName, password: user.password })
          .expect(500, { message: 'internal-error' });
        assertNoLeak(res.text, [user.password, 'sessions', 'relation']);
        assert.match(String(res.headers['x-request-id']), UUID);
      });

      it('when authentication hits the failing query, then it answers 500 and never echoes the token', async () => {
        const res = await broken.api
          .post('/v1/chats')
          .set(user.auth)
          .send({ chat_name: 'x' })
          .expect(500, { message: 'internal-error' });
        assertNoLeak(res.text, [user.token, 'sessions']);
      });
    });
  });

  describe('request ids', () => {
    it('when X-Request-Id is sane, then the response echoes it', async () => {
      const id = `req-${randomUUID()}_a.b:c`;
      await app.api.get('/ping').set('X-Request-Id', id).expect(200).expect('X-Request-Id', id);
    });

    it('when X-Request-Id is sane on a failing request, then the error response echoes it too', async () => {
      const id = 'trace.42';
      await app.api.get('/v1/nothing-here').set('X-Request-Id', id).expect(404).expect('X-Request-Id', id);
    });

    it('when there is no X-Request-Id, then a uuid is generated, new for each request', async () => {
      const first = await app.api.get('/ping').expect(200);
      const second = await app.api.get('/ping').expect(200);
      assert.match(String(first.headers['x-request-id']), UUID);
      assert.match(String(second.headers['x-request-id']), UUID);
      assert.notEqual(first.headers['x-request-id'], second.headers['x-request-id']);
    });

    const insane: [string, string][] = [
      ['holds spaces', 'id with spaces'],
      ['holds markup', '<script>alert(1)</script>'],
      ['is longer than 128 characters', 'a'.repeat(129)],
      ['holds a newline-like escape', 'abc%0d%0aSet-Cookie:x=1'],
    ];
    for (const [situation, id] of insane) {
      it(`when X-Request-Id ${situation}, then a fresh uuid replaces it`, async () => {
        const res = await app.api.get('/ping').set('X-Request-Id', id).expect(200);
        assert.notEqual(res.headers['x-request-id'], id);
        assert.match(String(res.headers['x-request-id']), UUID);
      });
    }
  });

  describe('query parameters', () => {
    it('when POST messages carries unknown query parameters, then they are ignored', async () => {
      const chatId = await createChat(app.api, alice);
      const memberId = await join(app.api, alice, chatId);
      const text = unique('hello');
      const res = await app.api
        .post(`/v1/chats/${chatId}/messages?user_id=${memberId}&foo=bar&limit=abc&from=%00&debug=1`)
        .set(alice.auth)
        .send({ message: text })
        .expect(201);
      assert.match(res.body.message_id, UUID);
      const history = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(alice.auth).expect(200);
      const messages = history.body.messages as { text: string }[];
      assert.deepEqual(
        messages.map((m) => m.text),
        [text],
      );
    });

    it('when POST messages has no user_id, then it answers 400 bad-parameters', async () => {
      const chatId = await createChat(app.api, alice);
      await join(app.api, alice, chatId);
      await app.api
        .post(`/v1/chats/${chatId}/messages?foo=bar`)
        .set(alice.auth)
        .send({ message: 'hi' })
        .expect(400)
        .expect(badParameters());
    });
  });
});
