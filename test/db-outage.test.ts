import assert from 'node:assert/strict';
import { startApp, type TestApp } from './support/app.js';
import { send, unique, type User, memberOfNewChat } from './support/fixtures.js';
import { profile } from './support/profile.js';
import { eventually, killLeftovers, spawnApi, type LogLine, type SpawnedApi } from './support/spawn.js';
import { TcpProxy } from './support/tcp-proxy.js';

/** With the database gone, /ping_db answers 503 (swagger.yml, /ping_db) within a bound; slack for CI. */
const FAST_MS = 1_500;

const OUTAGE_STARTED = 'database unreachable: outage started';
const OUTAGE_ENDED = 'database reachable again: outage ended';

/**
 * A history page size nobody has read yet: a page read before an outage may be served from the
 * history cache (stale-if-error), so the checks for 503 read pages that cannot be cached.
 */
let lastLimit = 100;
const unreadPage = () => `limit=${++lastLimit}`;

/** Response times measured during the outages, printed at the end of the suite. */
const measured: string[] = [];

async function timed<T>(label: string, request: () => PromiseLike<T>): Promise<T> {
  const started = performance.now();
  const result = await request();
  const ms = performance.now() - started;
  measured.push(`${label}: ${ms.toFixed(1)} ms`);
  assert.ok(ms < FAST_MS, `${label} took ${ms.toFixed(0)} ms`);
  return result;
}

function proxyFor(databaseUrl: string): TcpProxy {
  const target = new URL(databaseUrl);
  return new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
}

// Services profile only: an outage is staged with a TCP proxy in front of the PostgreSQL server of
// DATABASE_URL; the embedded database has no connection to cut.
if (profile.services) {
  const databaseUrl = process.env.DATABASE_URL!;

  describe('database outage', function () {
    this.timeout(60_000);

    after(() => {
      if (measured.length)
        process.stdout.write(`    measured during outages:\n      ${measured.join('\n      ')}\n`);
    });

    describe('in-process', () => {
      const proxy = proxyFor(databaseUrl);
      let app: TestApp;
      let user: User;
      let chatId: string;
      let memberId: string;

      before(async () => {
        await proxy.start();
        app = await startApp({ DATABASE_URL: proxy.proxiedUrl(databaseUrl) });
        ({ user, chatId, memberId } = await memberOfNewChat(app.api));
        await send(app.api, user, chatId, memberId, 'before the outage');
      });

      afterEach(async () => {
        // Every test leaves the database reachable (and the pool fresh) for the next one.
        await proxy.cut();
        await proxy.restore();
      });

      after(async () => {
        await app.close();
        await proxy.close();
      });

      it('when the database answers, then requests through the proxy succeed', async () => {
        await app.api.get('/ping_db').expect(200);
        const res = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200);
        assert.deepEqual(
          (res.body.messages as { text: string }[]).map((m) => m.text),
          ['before the outage'],
        );
      });

      it('when the database is cut, then /ping answers 200 and /ping_db 503 within a second', async () => {
        await proxy.cut();
        await timed('in-process GET /ping', () => app.api.get('/ping').expect(200));
        await timed('in-process GET /ping_db (1st)', () =>
          app.api.get('/ping_db').expect(503, { message: 'service-unavailable' }),
        );
        await timed('in-process GET /ping_db (2nd)', () =>
          app.api.get('/ping_db').expect(503, { message: 'service-unavailable' }),
        );
      });

      it('when the database is cut, then reads and writes answer 503 service-unavailable fast', async () => {
        await proxy.cut();
        await timed('in-process POST /v1/chats', () =>
          app.api
            .post('/v1/chats')
            .set(user.auth)
            .send({ chat_name: unique('chat') })
            .expect(503, { message: 'service-unavailable' }),
        );
        await timed('in-process GET history', () =>
          app.api
            .get(`/v1/chats/${chatId}/messages?${unreadPage()}`)
            .set(user.auth)
            .expect(503, { message: 'service-unavailable' }),
        );
        await timed('in-process POST message', () =>
          app.api
            .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
            .set(user.auth)
            .send({ message: 'during the outage' })
            .expect(503, { message: 'service-unavailable' }),
        );
        await timed('in-process POST /v1/auth/login', () =>
          app.api
            .post('/v1/auth/login')
            .send({ user_name: user.userName, password: user.password })
            .expect(503, { message: 'service-unavailable' }),
        );
      });

      it('when the database stops answering without closing connections, then /ping_db answers 503 within a second', async () => {
        // A network partition: no reset, no refusal, the packets just go nowhere.
        await app.api.get('/ping_db').expect(200);
        proxy.freeze();
        await timed('in-process GET /ping_db (frozen connection)', () =>
          app.api.get('/ping_db').expect(503, { message: 'service-unavailable' }),
        );
      });

      it('when the database comes back, then requests succeed again without a restart', async () => {
        await proxy.cut();
        await app.api.get('/ping_db').expect(503);
        await app.api.get(`/v1/chats/${chatId}/messages?${unreadPage()}`).set(user.auth).expect(503);
        await proxy.restore();
        const restored = performance.now();
        await eventually(async () => (await app.api.get('/ping_db')).status === 200, 5_000);
        measured.push(`in-process recovery after restore: ${(performance.now() - restored).toFixed(1)} ms`);
        await app.api
          .post('/v1/chats')
          .set(user.auth)
          .send({ chat_name: unique('chat') })
          .expect(201);
        await send(app.api, user, chatId, memberId, 'after the outage');
        const res = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200);
        assert.deepEqual(
          (res.body.messages as { text: string }[]).map((m) => m.text),
          ['before the outage', 'after the outage'],
        );
      });
    });

    describe('as a process', () => {
      const proxy = proxyFor(databaseUrl);
      let app: SpawnedApi;

      // One outage staged against a real process; the tests below read what it logged.
      before(async function () {
        this.timeout(90_000);
        await proxy.start();
        app = await spawnApi({ DATABASE_URL: proxy.proxiedUrl(databaseUrl) });
        await app.waitForLog((line) => /^database (migrated|schema up to date)$/.test(line.msg ?? ''));
        const { api } = app;
        const { user, chatId, memberId } = await memberOfNewChat(api);

        await proxy.cut();
        for (let i = 1; i <= 3; i++) {
          await timed(`process GET /ping_db (#${i})`, () =>
            api.get('/ping_db').expect(503, { message: 'service-unavailable' }),
          );
          await timed(`process POST /v1/chats (#${i})`, () =>
            api
              .post('/v1/chats')
              .set(user.auth)
              .send({ chat_name: unique('chat') })
              .expect(503, { message: 'service-unavailable' }),
          );
          await timed(`process GET history (#${i})`, () =>
            api
              .get(`/v1/chats/${chatId}/messages?${unreadPage()}`)
              .set(user.auth)
              .expect(503, { message: 'service-unavailable' }),
          );
        }
        await api.get('/ping').expect(200);

        await proxy.restore();
        const restored = performance.now();
        await eventually(async () => (await api.get('/ping_db')).status === 200, 5_000);
        measured.push(`process recovery after restore: ${(performance.now() - restored).toFixed(1)} ms`);
        await send(api, user, chatId, memberId, 'after the outage');
        await api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200);
        await api
          .post('/v1/chats')
          .set(user.auth)
          .send({ chat_name: unique('chat') })
          .expect(201);
        assert.equal(await app.stop(), 0);
      });

      after(async () => {
        await killLeftovers();
        await proxy.close();
      });

      it('when the database goes away and comes back, then the log has one "outage started" and one "outage ended" line', () => {
        const logs = app.logs();
        const started = logs.filter((line) => line.msg === OUTAGE_STARTED);
        const ended = logs.filter((line) => line.msg === OUTAGE_ENDED);
        const show = (lines: LogLine[]) => lines.map((line) => JSON.stringify(line)).join('\n');
        assert.equal(started.length, 1, `"outage started" lines:\n${show(started)}`);
        assert.equal(ended.length, 1, `"outage ended" lines:\n${show(ended)}`);
        assert.ok(logs.indexOf(started[0]!) < logs.indexOf(ended[0]!), 'started before ended');
        assert.ok(started[0]!.level >= 50, 'the start of an outage is an error');
        assert.equal(typeof ended[0]!.outageMs, 'number');
        // The failing requests are 503s, not 500 "unhandled error" lines.
        assert.deepEqual(
          logs.filter((line) => line.msg === 'unhandled error'),
          [],
        );
      });

      it('when requests fail during an outage, then stdout holds JSON log lines only (no driver chatter per request)', () => {
        const other = app.lines.filter((line) => {
          try {
            return typeof (JSON.parse(line) as { level?: unknown }).level !== 'number';
          } catch {
            return true;
          }
        });
        assert.deepEqual(other.slice(0, 5), [], `${other.length} non-JSON lines on stdout`);
      });
    });
  });
}
