import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { setTimeout as sleep } from 'node:timers/promises';

import { loadConfig } from '../src/config.js';

import { appWith, sharedApp, type TestApp } from './support/app.js';
import { badParameters, createChat, registerAndLogin, unique } from './support/fixtures.js';

const PASSWORD = 'correct horse battery';

/** Code points, as the API counts "characters" (not UTF-16 units, not grapheme clusters). */
const codePoints = (value: string) => Array.from(value).length;

/** A name of exactly `count` code points, unique across runs: an ASCII prefix padded with `pad`. */
function nameOf(count: number, pad: string): string {
  const prefix = unique('n');
  return prefix + pad.repeat(count - codePoints(prefix));
}

describe('auth', () => {
  let app: TestApp;
  before(async () => {
    app = await sharedApp();
  });

  const register = (body: unknown) => app.api.post('/v1/auth/register').send(body as object);
  const login = (user_name: string, password: string) =>
    app.api.post('/v1/auth/login').send({ user_name, password });

  describe('register', () => {
    it('when a new name registers, then it answers 201 with user_id and user_name', async () => {
      const name = unique('alice');
      const res = await register({ user_name: name, password: PASSWORD }).expect(201);
      assert.match(res.body.user_id, /^[0-9a-f-]{36}$/);
      assert.equal(res.body.user_name, name);
    });

    it('when the same name registers again, then it answers 409 user-already-exists', async () => {
      const name = unique('bob');
      await register({ user_name: name, password: PASSWORD }).expect(201);
      await register({ user_name: name, password: 'another password' }).expect(409, {
        message: 'user-already-exists',
      });
    });

    const badBodies: [string, unknown][] = [
      ['user_name is missing', { password: PASSWORD }],
      ['password is missing', { user_name: 'someone' }],
      ['both fields are missing', {}],
      ['user_name is a number', { user_name: 42, password: PASSWORD }],
      ['password is a number', { user_name: 'someone', password: 12345678 }],
      ['user_name is an object', { user_name: { first: 'a' }, password: PASSWORD }],
      ['password is an array', { user_name: 'someone', password: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] }],
      ['user_name is a boolean', { user_name: true, password: PASSWORD }],
      ['user_name is null', { user_name: null, password: PASSWORD }],
      ['user_name is empty', { user_name: '', password: PASSWORD }],
      ['password is empty', { user_name: 'someone', password: '' }],
    ];
    for (const [situation, body] of badBodies) {
      it(`when ${situation}, then it answers 400 bad-parameters`, async () => {
        await register(body).expect(400).expect(badParameters());
      });
    }

    it('when user_name has 256 characters, then it answers 400 bad-parameters', async () => {
      await register({ user_name: nameOf(256, 'a'), password: PASSWORD })
        .expect(400)
        .expect(badParameters());
    });

    it('when user_name has 255 characters, then it answers 201', async () => {
      const name = nameOf(255, 'a');
      assert.equal(name.length, 255);
      const res = await register({ user_name: name, password: PASSWORD }).expect(201);
      assert.equal(res.body.user_name, name);
    });

    it('when user_name is 255 emoji (510 UTF-16 units), then it answers 201: characters are code points', async () => {
      const name = nameOf(255, '😀');
      assert.equal(codePoints(name), 255);
      assert.ok(name.length > 255);
      const res = await register({ user_name: name, password: PASSWORD }).expect(201);
      assert.equal(res.body.user_name, name);
      await login(name, PASSWORD).expect(200);
    });

    it('when user_name is 256 emoji, then it answers 400 bad-parameters', async () => {
      await register({ user_name: nameOf(256, '😀'), password: PASSWORD })
        .expect(400)
        .expect(badParameters());
    });

    it('when user_name holds a NUL character, then it answers 400 bad-parameters, not 500', async () => {
      await register({ user_name: `${unique('nul')}\u0000x`, password: PASSWORD })
        .expect(400)
        .expect(badParameters());
    });

    it('when user_name holds a lone surrogate, then it answers 400 bad-parameters, not 500', async () => {
      await app.api
        .post('/v1/auth/register')
        .set('Content-Type', 'application/json')
        .send(`{"user_name":"${unique('sur')}\\ud800","password":"${PASSWORD}"}`)
        .expect(400)
        .expect(badParameters());
    });

    it('when the password is 7 bytes, then it answers 400 bad-parameters', async () => {
      await register({ user_name: unique('short'), password: '1234567' })
        .expect(400)
        .expect(badParameters());
    });

    it('when the password is 8 bytes, then it answers 201', async () => {
      await register({ user_name: unique('eight'), password: '12345678' }).expect(201);
    });

    it('when the password is 72 bytes, then it answers 201', async () => {
      await register({ user_name: unique('long'), password: 'p'.repeat(72) }).expect(201);
    });

    it('when the password is 73 bytes, then it answers 400 bad-parameters', async () => {
      await register({ user_name: unique('toolong'), password: 'p'.repeat(73) })
        .expect(400)
        .expect(badParameters());
    });

    it('when the password is 37 Cyrillic letters (37 characters but 74 bytes), then it answers 400', async () => {
      const password = 'ж'.repeat(37);
      assert.equal(Buffer.byteLength(password), 74);
      await register({ user_name: unique('cyr'), password })
        .expect(400)
        .expect(badParameters());
    });

    it('when the password is 4 Cyrillic letters (8 bytes), then it answers 201 and logs in', async () => {
      const name = unique('cyr');
      const password = 'тест';
      assert.equal(Buffer.byteLength(password), 8);
      await register({ user_name: name, password }).expect(201);
      await login(name, password).expect(200);
    });

    it('when the password holds a NUL character, then it answers 400 bad-parameters', async () => {
      await register({ user_name: unique('nulpw'), password: 'abcd\u0000efgh' })
        .expect(400)
        .expect(badParameters());
    });
  });

  describe('login', () => {
    it('when the credentials are right, then it answers 200 with a session_id', async () => {
      const name = unique('carol');
      await register({ user_name: name, password: PASSWORD }).expect(201);
      const res = await login(name, PASSWORD).expect(200);
      assert.equal(typeof res.body.session_id, 'string');
      assert.ok(res.body.session_id.length >= 32, 'session token too short to be unguessable');
    });

    it('when the same user logs in twice, then each login gets a different session', async () => {
      const name = unique('twice');
      await register({ user_name: name, password: PASSWORD }).expect(201);
      const first = await login(name, PASSWORD).expect(200);
      const second = await login(name, PASSWORD).expect(200);
      assert.notEqual(first.body.session_id, second.body.session_id);
    });

    it('when the password is wrong, then it answers 401 invalid-credentials', async () => {
      const name = unique('dave');
      await register({ user_name: name, password: PASSWORD }).expect(201);
      await login(name, 'wrong password').expect(401, { message: 'invalid-credentials' });
    });

    it('when the user is unknown, then it answers 401 invalid-credentials', async () => {
      await login(unique('nobody'), PASSWORD).expect(401, { message: 'invalid-credentials' });
    });

    it('when the user is unknown or the password wrong, then both answers are identical', async () => {
      const name = unique('erin');
      await register({ user_name: name, password: PASSWORD }).expect(201);
      const wrong = await login(name, 'wrong password').expect(401);
      const unknown = await login(unique('nobody'), 'wrong password').expect(401);
      assert.equal(wrong.text, unknown.text);
      assert.equal(wrong.headers['content-type'], unknown.headers['content-type']);
    });

    it('when the password is right but in another case, then it answers 401 invalid-credentials', async () => {
      const name = unique('frank');
      await register({ user_name: name, password: PASSWORD }).expect(201);
      await login(name, PASSWORD.toUpperCase()).expect(401, { message: 'invalid-credentials' });
    });

    it('when the login body lacks a password, then it answers 400 bad-parameters', async () => {
      await app.api
        .post('/v1/auth/login')
        .send({ user_name: unique('x') })
        .expect(400)
        .expect(badParameters());
    });
  });

  describe('sessions', () => {
    it('when an authenticated call has no Authorization, then it answers 401 auth-failed', async () => {
      await app.api.post('/v1/chats').send({ chat_name: 'x' }).expect(401, { message: 'auth-failed' });
    });

    it('when Authorization uses the Basic scheme, then it answers 401 auth-failed', async () => {
      await app.api
        .post('/v1/chats')
        .set('Authorization', 'Basic xyz')
        .send({ chat_name: 'x' })
        .expect(401, { message: 'auth-failed' });
    });

    it('when Authorization is "session_id" with no token, then it answers 401 auth-failed', async () => {
      await app.api
        .post('/v1/chats')
        .set('Authorization', 'session_id')
        .send({ chat_name: 'x' })
        .expect(401, { message: 'auth-failed' });
    });

    it('when the token is unknown, then it answers 401 invalid-session-id', async () => {
      await app.api
        .post('/v1/chats')
        .set('Authorization', `session_id ${unique('not-a-session')}`)
        .send({ chat_name: 'x' })
        .expect(401, { message: 'invalid-session-id' });
    });

    it('when the token is sent as "Bearer <token>", then it is accepted', async () => {
      const user = await registerAndLogin(app.api);
      await app.api
        .post('/v1/chats')
        .set('Authorization', `Bearer ${user.token}`)
        .send({ chat_name: unique('chat') })
        .expect(201);
    });

    it('when the token is sent as "session_id <token>", then it is accepted', async () => {
      const user = await registerAndLogin(app.api);
      await createChat(app.api, user);
    });

    it('when a user logs out, then it answers 200 and the same token answers 401 invalid-session-id', async () => {
      const user = await registerAndLogin(app.api);
      await createChat(app.api, user);
      await app.api.post('/v1/auth/logout').set(user.auth).expect(200);
      await app.api
        .post('/v1/chats')
        .set(user.auth)
        .send({ chat_name: unique('chat') })
        .expect(401, { message: 'invalid-session-id' });
      await app.api.post('/v1/auth/logout').set(user.auth).expect(401, { message: 'invalid-session-id' });
    });

    it('when logout has no Authorization, then it answers 401 auth-failed', async () => {
      await app.api.post('/v1/auth/logout').expect(401, { message: 'auth-failed' });
    });

    it('when one session of a user logs out, then another session of that user still works', async () => {
      const user = await registerAndLogin(app.api);
      const other = await login(user.userName, user.password).expect(200);
      const otherAuth = { Authorization: `session_id ${other.body.session_id}` };
      await app.api.post('/v1/auth/logout').set(user.auth).expect(200);
      await app.api
        .post('/v1/chats')
        .set(otherAuth)
        .send({ chat_name: unique('chat') })
        .expect(201);
      await app.api
        .post('/v1/chats')
        .set(user.auth)
        .send({ chat_name: unique('chat') })
        .expect(401, { message: 'invalid-session-id' });
    });

    describe('with SESSION_TTL=1', () => {
      const shortApp = appWith({ SESSION_TTL: '1' });

      it('when a session is older than SESSION_TTL, then it answers 401 session-id-expired', async () => {
        const user = await registerAndLogin(shortApp().api);
        await sleep(1200);
        await shortApp()
          .api.post('/v1/chats')
          .set(user.auth)
          .send({ chat_name: unique('chat') })
          .expect(401, { message: 'session-id-expired' });
      });
    });
  });

  describe('storage', () => {
    it('when a session is opened, then the database holds only the sha256 of its token', async () => {
      const user = await registerAndLogin(app.api);
      const knex = app.service.db.knex;
      const expected = createHash('sha256').update(user.token).digest('hex');
      const stored = await knex('sessions').where({ token_hash: expected }).first();
      assert.ok(stored, 'no session row with token_hash = sha256(token)');
      assert.match(stored.token_hash, /^[0-9a-f]{64}$/);

      const leaks = await knex.raw<{ rows: { n: string | number }[] }>(
        `SELECT
           (SELECT count(*) FROM sessions s WHERE position(? in row_to_json(s)::text) > 0)
         + (SELECT count(*) FROM users u WHERE position(? in row_to_json(u)::text) > 0) AS n`,
        [user.token, user.token],
      );
      assert.equal(Number(leaks.rows[0]!.n), 0, 'the raw session token is stored in the database');
    });

    it('when a user registers, then the database holds a bcrypt hash, not the password', async () => {
      const name = unique('hash');
      const password = `pw-${unique('secret')}`;
      await register({ user_name: name, password }).expect(201);
      const row = await app.service.db.knex('users').where({ name }).first();
      assert.ok(row, 'no user row');
      assert.ok(row.password_hash.startsWith('$2b$'), `not a bcrypt $2b$ hash: ${row.password_hash}`);
      assert.ok(!row.password_hash.includes(password));
      // The tests run with BCRYPT_COST=4, and the hash says so: the setting is applied.
      assert.ok(row.password_hash.startsWith('$2b$04$'), row.password_hash);

      const leaks = await app.service.db.knex.raw<{ rows: { n: string | number }[] }>(
        'SELECT count(*) AS n FROM users u WHERE position(? in row_to_json(u)::text) > 0',
        [password],
      );
      assert.equal(Number(leaks.rows[0]!.n), 0, 'the password is stored in the database');
    });

    it('when BCRYPT_COST is not set, then the bcrypt cost is 12', () => {
      assert.equal(loadConfig({}).bcryptCost, 12);
      assert.equal(app.config.bcryptCost, 4);
    });
  });
});
