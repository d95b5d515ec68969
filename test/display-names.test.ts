import assert from 'node:assert/strict';
import { sharedApp, type TestApp } from './support/app.js';
import {
  badParameters,
  createChat,
  join,
  registerAndLogin,
  send,
  unique,
  type User,
} from './support/fixtures.js';

const RULE = /^user_name must not contain control characters or bidirectional overrides/;

describe('display names', () => {
  let app: TestApp;
  let alice: User;
  let chat: string;

  before(async () => {
    app = await sharedApp();
    alice = await registerAndLogin(app.api);
    chat = await createChat(app.api, alice);
  });

  /** The names the chat's history shows, in message order. */
  async function shownNames(): Promise<string[]> {
    const res = await app.api.get(`/v1/chats/${chat}/messages?limit=1000`).set(alice.auth).expect(200);
    return (res.body.messages as { user_name: string }[]).map((message) => message.user_name);
  }

  for (const [label, name] of [
    ['a right-to-left override (U+202E)', 'bob\u202Enimda'],
    ['a left-to-right isolate (U+2066)', '\u2066admin\u2069'],
    ['a right-to-left mark (U+200F)', 'admin\u200F'],
    ['a line break', 'bob\nadmin: hello'],
    ['a C1 control (U+0085)', 'bob\u0085'],
    ['a NUL', 'bob\u0000'],
  ] as const) {
    it(`when a join name holds ${label}, then it answers 400 naming the rule`, async () => {
      const bob = await registerAndLogin(app.api);
      const invited = await createChat(app.api, bob);
      await app.api
        .post(`/v1/chats/${invited}/users`)
        .set(bob.auth)
        .send({ user_name: name })
        .expect(400)
        .expect(badParameters(name.includes('\u0000') ? /user_name/ : RULE));
    });
  }

  it('when a user registers with a bidi override in the name, then it answers 400 naming the rule', async () => {
    await app.api
      .post('/v1/auth/register')
      .send({ user_name: `${unique('u')}\u202Egpj.exe`, password: 'correct horse battery' })
      .expect(400)
      .expect(badParameters(RULE));
  });

  it('when a name is sent decomposed (NFD), then it is stored and shown composed (NFC)', async () => {
    const decomposed = `Ame\u0301lie ${unique('x')}`;
    const member = await join(app.api, alice, chat, decomposed);
    await send(app.api, alice, chat, member, 'bonjour');
    const names = await shownNames();
    assert.equal(names.at(-1), decomposed.normalize('NFC'));
    assert.notEqual(names.at(-1), decomposed);
  });

  it('when a name holds emoji joined by zero-width joiners, then it is accepted unchanged', async () => {
    const bob = await registerAndLogin(app.api);
    const invited = await createChat(app.api, bob);
    const name = 'family 👩‍👩‍👧 Émile';
    await join(app.api, bob, invited, name);
    const member = await join(app.api, bob, invited, name);
    await send(app.api, bob, invited, member, 'hello');
    const res = await app.api.get(`/v1/chats/${invited}/messages?limit=10`).set(bob.auth).expect(200);
    assert.equal(res.body.messages[0].user_name, name);
  });

  it('when a user registered composed logs in with the decomposed spelling, then login succeeds', async () => {
    const name = `José ${unique('x')}`;
    await app.api
      .post('/v1/auth/register')
      .send({ user_name: name.normalize('NFD'), password: 'correct horse battery' })
      .expect(201)
      .expect((res) => assert.equal(res.body.user_name, name.normalize('NFC')));
    await app.api
      .post('/v1/auth/login')
      .send({ user_name: name.normalize('NFC'), password: 'correct horse battery' })
      .expect(200);
    await app.api
      .post('/v1/auth/login')
      .send({ user_name: name.normalize('NFD'), password: 'correct horse battery' })
      .expect(200);
  });
});
