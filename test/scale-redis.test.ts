import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { createLogger } from '../src/infra/logger.js';
import {
  clusterTarget,
  connectRedis,
  hashTag,
  subscriber,
  type RedisConnection,
} from '../src/infra/redis.js';
import { startApp, type TestApp } from './support/app.js';
import { baseUrl, openSse } from './support/events.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';
import { profile } from './support/profile.js';

/** The master (host:port) that owns a key's slot, from the cluster's own slot table. */
async function ownerOf(cluster: Cluster, key: string): Promise<string> {
  const slot = calculateSlot(key);
  const ranges = (await cluster.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  assert.ok(range, `slot ${slot} has an owner`);
  return `${range[2][0]}:${range[2][1]}`;
}

/** Keys on one node (not the cluster) that match `pattern`. */
async function keysOn(node: string, pattern: string): Promise<string[]> {
  const [host, port] = node.split(':');
  const client = new Redis({ host, port: Number(port), lazyConnect: true });
  await client.connect();
  try {
    return await client.keys(pattern);
  } finally {
    client.disconnect();
  }
}

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
        chatKeys.some((key) => key.includes('history:page:')),
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

    it('when a message is sent through one instance, then a stream on another instance gets it over the cluster', async () => {
      const other = await startApp({ PORT: '0', HOST: '127.0.0.1' }, { consumer: false });
      try {
        const server = await other.service.listen();
        const [alice, bob] = [await registerAndLogin(app.api), await registerAndLogin(app.api)];
        const chatId = await createChat(app.api, alice);
        const aliceMember = await join(app.api, alice, chatId);
        await join(app.api, bob, chatId);
        const stream = await openSse(`${baseUrl(server)}/v1/events`, bob.auth);
        try {
          const messageId = await send(app.api, alice, chatId, aliceMember, 'across the cluster');
          const frames = await stream.until((all) => all.some((frame) => frame.type === 'message'));
          assert.equal(frames.find((frame) => frame.type === 'message')?.data.message_id, messageId);
        } finally {
          stream.close();
        }
      } finally {
        await other.close();
      }
    });

    it('when events for chats on different nodes are published with SPUBLISH, then a sharded subscriber receives each from its own shard', async () => {
      const logger = createLogger('silent');
      const publisher: RedisConnection = connectRedis(redisUrl, 'test publisher', logger);
      const client = subscriber(redisUrl, 'test') as Cluster;
      try {
        // Two chat channels owned by different masters.
        const channels: string[] = [];
        const owners = new Set<string>();
        for (let n = 0; channels.length < 2 && n < 100; n++) {
          const channel = `events:${hashTag(`chat-${n}`)}`;
          const owner = await ownerOf(inspector, channel);
          if (!owners.has(owner)) {
            owners.add(owner);
            channels.push(channel);
          }
        }
        assert.equal(channels.length, 2);
        // One SSUBSCRIBE per shard: a command's channels must share a slot.
        for (const channel of channels) await client.ssubscribe(channel);
        const received: [string, string][] = [];
        client.on('smessage', (channel: string, message: string) => received.push([channel, message]));
        for (const channel of channels) {
          // A publish reaches only the shard's subscribers: 1 per channel here.
          assert.equal(await (publisher.client as Cluster).spublish(channel, `to ${channel}`), 1);
        }
        while (received.length < 2) await once(client, 'smessage');
        assert.deepEqual(received.sort(), channels.map((channel) => [channel, `to ${channel}`]).sort());
      } finally {
        client.disconnect();
        await publisher.close();
      }
    });
  });
}
