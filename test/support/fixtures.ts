import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import type { Api } from './app.js';

/** Names no other test (or earlier run on the same database) uses. */
export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export const json = { 'Content-Type': 'application/json' };

export interface User {
  userName: string;
  password: string;
  token: string;
  auth: { Authorization: string };
}

export async function registerAndLogin(api: Api, userName = unique('user')): Promise<User> {
  const password = 'correct horse battery';
  await api.post('/v1/auth/register').send({ user_name: userName, password }).expect(201);
  const res = await api.post('/v1/auth/login').send({ user_name: userName, password }).expect(200);
  const token = res.body.session_id as string;
  return { userName, password, token, auth: { Authorization: `session_id ${token}` } };
}

export async function createChat(api: Api, user: User, chatName = unique('chat')): Promise<string> {
  const res = await api.post('/v1/chats').set(user.auth).send({ chat_name: chatName }).expect(201);
  return res.body.chat_id as string;
}

/** Joins the chat; returns the caller's member id there. */
export async function join(
  api: Api,
  user: User,
  chatId: string,
  displayName = user.userName,
): Promise<string> {
  const res = await api
    .post(`/v1/chats/${chatId}/users`)
    .set(user.auth)
    .send({ user_name: displayName })
    .expect(201);
  return res.body.user_id as string;
}

export async function send(
  api: Api,
  user: User,
  chatId: string,
  memberId: string,
  message: string,
): Promise<string> {
  const res = await api
    .post(`/v1/chats/${chatId}/messages?user_id=${memberId}`)
    .set(user.auth)
    .send({ message })
    .expect(201);
  return res.body.message_id as string;
}

/** Checks a 400 `bad-parameters` whose `detail` tells a person which parameter broke which rule. */
export const badParameters =
  (detail: RegExp = /\S/) =>
  (res: Response): void => {
    assert.equal(res.body.message, 'bad-parameters');
    assert.match(String(res.body.detail), detail);
  };

/** A new user who created a chat and joined it: the most common starting point of a test. */
export async function memberOfNewChat(
  api: Api,
  displayName?: string,
): Promise<{ user: User; chatId: string; memberId: string }> {
  const user = await registerAndLogin(api);
  const chatId = await createChat(api, user);
  const memberId = await join(api, user, chatId, displayName);
  return { user, chatId, memberId };
}
