import assert from 'node:assert/strict';
import { createRequestRules } from '../src/http/validate.js';
import { sharedApp, type TestApp } from './support/app.js';
import { badParameters, createChat, join, registerAndLogin, unique, type User } from './support/fixtures.js';

describe('request validation', () => {
  describe('when a request breaks a rule of swagger.yml', () => {
    let app: TestApp;
    let alice: User;
    let chatId: string;
    let memberId: string;

    before(async () => {
      app = await sharedApp();
      alice = await registerAndLogin(app.api);
      chatId = await createChat(app.api, alice);
      memberId = await join(app.api, alice, chatId);
    });

    it('when a search query is too short, then the detail names the parameter and its bounds', async () => {
      await app.api
        .post('/v1/chats/search')
        .set(alice.auth)
        .send({ message: 'abc' })
        .expect(400)
        .expect(badParameters(/^message must be 4\.\.1000 characters$/));
    });

    it('when limit is out of range, then the detail names limit and its range', async () => {
      await app.api
        .get(`/v1/chats/${chatId}/messages?limit=0`)
        .set(alice.auth)
        .expect(400)
        .expect(badParameters(/^limit must be 1\.\.1000$/));
    });

    it('when limit is not a whole number, then the detail says so', async () => {
      await app.api
        .get(`/v1/chats/${chatId}/messages?limit=ten`)
        .set(alice.auth)
        .expect(400)
        .expect(badParameters(/^limit must be a whole number$/));
    });

    it('when a password is 7 bytes, then the detail gives the bounds in bytes', async () => {
      await app.api
        .post('/v1/auth/register')
        .send({ user_name: unique('short'), password: '1234567' })
        .expect(400)
        .expect(badParameters(/^password must be 8\.\.72 bytes in UTF-8$/));
    });

    it('when a required field is missing, then the detail names it', async () => {
      await app.api
        .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
        .set(alice.auth)
        .send({ text: 'hello' })
        .expect(400)
        .expect(badParameters(/^message is required$/));
    });

    it('when a field has the wrong JSON type, then it is refused rather than converted', async () => {
      await app.api
        .post('/v1/chats')
        .set(alice.auth)
        .send({ chat_name: 12345 })
        .expect(400)
        .expect(badParameters(/^chat_name must be a string$/));
    });

    it('when a search date is in year 0000, then it answers 400 naming the field', async () => {
      await app.api
        .post('/v1/chats/search')
        .set(alice.auth)
        .send({ message: 'hello world', after: '0000-01-01' })
        .expect(400)
        .expect(badParameters(/^after must be an ISO 8601 date/));
    });

    it('when an optional field is null, then it counts as absent', async () => {
      await app.api
        .post('/v1/chats/search')
        .set(alice.auth)
        .send({ message: 'hello world', chat_id: null })
        .expect(201);
    });
  });

  describe('when the rules are read from a spec', () => {
    const spec = (maxLength: number) => `
openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /things:
    post:
      operationId: createThing
      parameters:
        - { name: from, in: query, schema: { type: string, x-error: bad-cursor } }
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties:
                name: { type: string, minLength: 1, maxLength: ${maxLength} }
      responses: { '201': { description: ok } }
`;

    it('when the spec changes a limit, then the rule follows it (one source of truth)', () => {
      const three = createRequestRules(spec(3));
      const five = createRequestRules(spec(5));
      assert.throws(() => three.body('createThing', { name: 'abcd' }), { code: 'bad-parameters' });
      assert.deepEqual(five.body('createThing', { name: 'abcd' }), { name: 'abcd' });
    });

    it('when a parameter says x-error: bad-cursor, then breaking it answers bad-cursor', () => {
      const rules = createRequestRules(spec(3));
      assert.throws(() => rules.query('createThing', { from: ['a', 'b'] }), { code: 'bad-cursor' });
    });

    it('when text holds NUL, then it is refused even within the length bounds', () => {
      const rules = createRequestRules(spec(3));
      assert.throws(() => rules.body('createThing', { name: 'a\u0000' }), { code: 'bad-parameters' });
    });
  });
});
