import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startApp, type TestApp } from './support/app.js';
import { badParameters, unique } from './support/fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface HistoryPage {
  messages: { text: string; user_id: string; user_name: string }[];
  next?: { iterator: string };
}

const rows = (body: unknown) => (body as HistoryPage).messages.map((m) => [m.text, m.user_id, m.user_name]);
const texts = (body: unknown) => (body as HistoryPage).messages.map((m) => m.text);

describe('with AUTH_DISABLED=true', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp({ AUTH_DISABLED: 'true' });
  });

  after(async () => {
    await app.close();
  });

  /** Anonymous calls only: none of these helpers sends an Authorization header. */
  async function createChat(): Promise<string> {
    const res = await app.api
      .post('/v1/chats')
      .send({ chat_name: unique('open') })
      .expect(201);
    return res.body.chat_id as string;
  }

  async function join(chatId: string, userName: string): Promise<string> {
    const res = await app.api.post(`/v1/chats/${chatId}/users`).send({ user_name: userName }).expect(201);
    return res.body.user_id as string;
  }

  it('when a chat is created without Authorization, then it answers 201 with a chat_id', async () => {
    // Act
    const res = await app.api
      .post('/v1/chats')
      .send({ chat_name: unique('open') })
      .expect(201);

    // Assert
    assert.match(res.body.chat_id, UUID);
  });

  it('when input is invalid, then it is still rejected with 400 bad-parameters', async () => {
    await app.api.post('/v1/chats').send({ chat_name: '' }).expect(400).expect(badParameters());
  });

  it('when the same anonymous caller joins twice, then each join makes a new member', async () => {
    // Arrange
    const chatId = await createChat();

    // Act
    const first = await join(chatId, 'Anon');
    const second = await join(chatId, 'Anon');

    // Assert
    assert.match(first, UUID);
    assert.match(second, UUID);
    assert.notEqual(first, second);
  });

  it('when posting as either anonymous member, then both messages are stored under their own names', async () => {
    // Arrange
    const chatId = await createChat();
    const ann = await join(chatId, 'Ann');
    const ben = await join(chatId, 'Ben');

    // Act
    await app.api
      .post(`/v1/chats/${chatId}/messages?user_id=${ann}`)
      .send({ message: 'from Ann' })
      .expect(201);
    await app.api
      .post(`/v1/chats/${chatId}/messages?user_id=${ben}`)
      .send({ message: 'from Ben' })
      .expect(201);

    // Assert
    const res = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).expect(200);
    assert.deepEqual(rows(res.body), [
      ['from Ann', ann, 'Ann'],
      ['from Ben', ben, 'Ben'],
    ]);
  });

  it('when history is read without Authorization, then it answers 200 with the page and next', async () => {
    // Arrange
    const chatId = await createChat();
    const member = await join(chatId, 'Writer');
    for (const text of ['one', 'two', 'three']) {
      await app.api
        .post(`/v1/chats/${chatId}/messages?user_id=${member}`)
        .send({ message: text })
        .expect(201);
    }

    // Act
    const first = await app.api.get(`/v1/chats/${chatId}/messages?limit=2`).expect(200);
    const cursor = encodeURIComponent(first.body.next.iterator);
    const second = await app.api.get(`/v1/chats/${chatId}/messages?limit=2&from=${cursor}`).expect(200);

    // Assert
    assert.deepEqual(texts(first.body), ['one', 'two']);
    assert.deepEqual(texts(second.body), ['three']);
    assert.equal('next' in second.body, false);
  });

  it('when a chat was never joined, then an anonymous caller can still read it', async () => {
    // Arrange
    const chatId = await createChat();

    // Act
    const res = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).expect(200);

    // Assert
    assert.deepEqual(res.body.messages, []);
  });

  it("when someone else's member id is used in its chat, then the post is accepted", async () => {
    // Arrange: everybody is the same anonymous caller, so every member of the chat may be used.
    const chatId = await createChat();
    const someone = await join(chatId, 'Someone');

    // Act
    await app.api
      .post(`/v1/chats/${chatId}/messages?user_id=${someone}`)
      .send({ message: 'posted without joining myself' })
      .expect(201);

    // Assert
    const res = await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).expect(200);
    assert.equal(res.body.messages[0].user_name, 'Someone');
  });

  it('when the member id belongs to another chat, then posting still answers 404 user-not-found', async () => {
    // Arrange
    const chatId = await createChat();
    const elsewhere = await join(await createChat(), 'Elsewhere');

    // Act + Assert
    await app.api
      .post(`/v1/chats/${chatId}/messages?user_id=${elsewhere}`)
      .send({ message: 'wrong chat' })
      .expect(404, { message: 'user-not-found' });
    await app.api
      .post(`/v1/chats/${chatId}/messages?user_id=random_user`)
      .send({ message: 'nobody' })
      .expect(404, { message: 'user-not-found' });
  });

  it('when the chat does not exist, then joining, posting and reading answer 404 chat-not-found', async () => {
    // Arrange
    const missing = randomUUID();

    // Act + Assert
    await app.api
      .post('/v1/chats/random_chat/users')
      .send({ user_name: 'Anon' })
      .expect(404, { message: 'chat-not-found' });
    await app.api
      .post(`/v1/chats/${missing}/users`)
      .send({ user_name: 'Anon' })
      .expect(404, { message: 'chat-not-found' });
    await app.api
      .post(`/v1/chats/${missing}/messages?user_id=${randomUUID()}`)
      .send({ message: 'hello' })
      .expect(404, { message: 'chat-not-found' });
    await app.api.get(`/v1/chats/${missing}/messages?limit=10`).expect(404, { message: 'chat-not-found' });
  });

  it('when a user registers and logs in, then both still work', async () => {
    // Arrange
    const userName = unique('still');
    const password = 'correct horse battery';

    // Act
    const registered = await app.api
      .post('/v1/auth/register')
      .send({ user_name: userName, password })
      .expect(201);
    const loggedIn = await app.api.post('/v1/auth/login').send({ user_name: userName, password }).expect(200);

    // Assert
    assert.equal(registered.body.user_name, userName);
    assert.equal(typeof loggedIn.body.session_id, 'string');
    assert.ok(loggedIn.body.session_id.length > 0);
    await app.api
      .post('/v1/auth/login')
      .send({ user_name: userName, password: 'wrong password!' })
      .expect(401, { message: 'invalid-credentials' });
  });

  it('when a session is sent anyway, then the request is served', async () => {
    // Arrange
    const userName = unique('with-session');
    const password = 'correct horse battery';
    await app.api.post('/v1/auth/register').send({ user_name: userName, password }).expect(201);
    const login = await app.api.post('/v1/auth/login').send({ user_name: userName, password }).expect(200);

    // Act + Assert
    await app.api
      .post('/v1/chats')
      .set('Authorization', `session_id ${login.body.session_id}`)
      .send({ chat_name: unique('with-session') })
      .expect(201);
  });
});
