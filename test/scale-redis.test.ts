import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import { clusterTarget, hashTag } from '../src/infra/redis.js';
import { startApp, type TestApp } from './support/app.js';
import { keysOn, ownerOf } from './support/cluster.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';
import { profile } from './support/profile.js';

const redisUrl = profile.env.REDIS_URL;
const target = redisUrl ? clusterTarget(redisUrl) : undefined;

// Only under `make test-scale` (REDIS_URL=redis+cluster://...): a local three-master cluster.
if (profile.services && redisUrl && target) {
  describe('Redis Cluster (three local masters)', function () {
    this.timeout(60_000);
    let app: TestApp;
    let inspector: Cluster;

    before(async () => {
      app = await startApp({}, { consumer: false });
      inspector = new Cluster(target.nodes);
      await inspector.ping();
    });
    after(async () => {
      await app.close();
      inspector.disconnect();
    });

    it("when a chat's keys live on another node than the user's session, then history is cached (MISS, HIT), a send makes it stale at once, and logout ends the session", async () => {
      const user: User = await registerAndLogin(app.api);
      const sessionKey = `session:${hashTag(createHash('sha256').update(user.token).digest('hex'))}`;
      const sessionNode = await ownerOf(inspector, sessionKey);
      // Chat ids are the server's: new chats until one hashes to another master (2 in 3 do).
      let chatId = '';
      let chatNode = sessionNode;
      for (let attempt = 0; attempt < 30 && chatNode === sessionNode; attempt++) {
        chatId = await createChat(app.api, user);
        chatNode = await ownerOf(inspector, hashTag(chatId));
      }
      assert.notEqual(chatNode, sessionNode);
      const memberId = await join(app.api, user, chatId);
      await send(app.api, user, chatId, memberId, 'one');

      const read = () => app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(200);
      assert.equal((await read()).headers['x-cache'], 'MISS');
      const hit = await read();
      assert.equal(hit.headers['x-cache'], 'HIT');
      assert.deepEqual(
        (hit.body as { messages: { text: string }[] }).messages.map((m) => m.text),
        ['one'],
      );
      // The chat's generation and page sit together on the chat's node, the session on its own.
      const chatKeys = await keysOn(chatNode, `*${hashTag(chatId)}*`);
      assert.ok(
        chatKeys.some((key) => key.includes('history:pages:')),
        chatKeys.join(),
      );
      assert.ok((await keysOn(sessionNode, `*${sessionKey}*`)).length >= 1);

      await send(app.api, user, chatId, memberId, 'two');
      const fresh = await read();
      assert.equal(fresh.headers['x-cache'], 'MISS');
      assert.deepEqual(
        (fresh.body as { messages: { text: string }[] }).messages.map((m) => m.text),
        ['one', 'two'],
      );
      assert.ok((await keysOn(chatNode, `*history:generation:${hashTag(chatId)}`)).length === 1);

      await app.api.post('/v1/auth/logout').set(user.auth).expect(200);
      await app.api.get(`/v1/chats/${chatId}/messages?limit=10`).set(user.auth).expect(401);
    });
  });
}
