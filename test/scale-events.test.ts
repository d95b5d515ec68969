import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { Cluster } from 'ioredis';
import { clusterTarget, hashTag } from '../src/infra/redis.js';
import { startApp, type TestApp } from './support/app.js';
import { onNode, ownerOf } from './support/cluster.js';
import { baseUrl, openSse, type SseClient } from './support/events.js';
import { createChat, join, registerAndLogin, send, type User } from './support/fixtures.js';
import { profile } from './support/profile.js';
import { eventually } from './support/spawn.js';

const redisUrl = profile.env.REDIS_URL;
const target = redisUrl ? clusterTarget(redisUrl) : undefined;

/** A chat's sharded channel (the events module's bus: `messenger:events:{<chat id>}`). */
const channelOf = (chatId: string) => `messenger:events:${hashTag(chatId)}`;

async function listeningApp(): Promise<{ app: TestApp; url: string; server: http.Server }> {
  const app = await startApp({ PORT: '0', HOST: '127.0.0.1' }, { consumer: false });
  const server = await app.service.listen();
  return { app, url: baseUrl(server), server };
}

/** Subscribers of a sharded channel on the node that owns it. */
const shardSubscribers = (node: string, channel: string) =>
  onNode(node, async (client) => {
    const [, count] = (await client.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
    return count;
  });

/** A counter of an instance's /metrics. */
async function metric(app: TestApp, name: string): Promise<number> {
  const { text } = await app.api.get('/metrics').expect(200);
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

const sessionKey = (user: User) =>
  `session:${hashTag(createHash('sha256').update(user.token).digest('hex'))}`;

// Only under `make test-scale` (REDIS_URL=redis+cluster://...): a local three-master cluster.
if (profile.services && redisUrl && target) {
  describe('real-time events on a Redis Cluster (sharded pub/sub, a channel per chat)', function () {
    this.timeout(90_000);
    let a: Awaited<ReturnType<typeof listeningApp>>;
    let b: Awaited<ReturnType<typeof listeningApp>>;
    let inspector: Cluster;
    let alice: User;
    let bob: User;

    before(async () => {
      [a, b] = await Promise.all([listeningApp(), listeningApp()]);
      inspector = new Cluster(target.nodes);
      await inspector.ping();
    });
    after(async () => {
      await a.app.close();
      await b.app.close();
      inspector.disconnect();
    });
    beforeEach(async () => {
      alice = await registerAndLogin(a.app.api);
      bob = await registerAndLogin(a.app.api);
    });

    /** A chat of alice's (bob not in it yet) whose channel lives on another node than bob's session. */
    async function chatAwayFromSession(): Promise<{ chatId: string; node: string; sessionNode: string }> {
      const sessionNode = await ownerOf(inspector, sessionKey(bob));
      // Chat ids are the server's: new chats until one hashes to another master (2 in 3 do).
      for (let attempt = 0; attempt < 30; attempt++) {
        const chatId = await createChat(a.app.api, alice);
        const node = await ownerOf(inspector, channelOf(chatId));
        if (node !== sessionNode) return { chatId, node, sessionNode };
      }
      throw new Error('no chat hashed away from the session in 30 tries');
    }

    it("when a chat's channel lives on another node than the reader's session, then a message sent through one instance reaches a stream on the other over that chat's channel alone", async () => {
      const { chatId, node } = await chatAwayFromSession();
      const aliceMember = await join(a.app.api, alice, chatId);
      await join(a.app.api, bob, chatId);
      const stream = await openSse(`${b.url}/v1/events`, bob.auth);
      try {
        // Instance B listens to the chat's channel on its node; nobody uses a cluster-wide channel.
        await eventually(async () => (await shardSubscribers(node, channelOf(chatId))) === 1);
        for (const { host, port } of target.nodes) {
          const [, plain] = await onNode(`${host}:${port}`, (client) =>
            client.pubsub('NUMSUB', 'messenger:events'),
          );
          assert.equal(Number(plain), 0);
        }
        const messageId = await send(a.app.api, alice, chatId, aliceMember, 'across the cluster');
        const frames = await stream.until((all) => all.some((frame) => frame.type === 'message'));
        assert.equal(frames.find((frame) => frame.type === 'message')?.data.message_id, messageId);
      } finally {
        stream.close();
      }
      // No stream follows the chat on B any more: its channel is left.
      await eventually(async () => (await shardSubscribers(node, channelOf(chatId))) === 0);
    });

    it('when a user joins a chat through one instance, then their stream on the other starts getting it (the join comes on the user’s channel)', async () => {
      const { chatId } = await chatAwayFromSession();
      const aliceMember = await join(a.app.api, alice, chatId);
      const stream = await openSse(`${b.url}/v1/events`, bob.auth);
      try {
        const bobMember = await join(a.app.api, bob, chatId);
        await send(a.app.api, alice, chatId, aliceMember, 'after the join');
        await stream.until((frames) => frames.some((frame) => frame.type === 'message'));
        assert.deepEqual(
          stream.frames.filter((frame) => frame.type !== 'presence').map((frame) => frame.type),
          ['member', 'message'],
        );
        assert.equal(stream.of('member')[0]!.data.user_id, bobMember);
        assert.deepEqual(stream.texts(), ['after the join']);
      } finally {
        stream.close();
      }
    });

    it("when the subscriptions on a chat's node are cut and cannot be made again for a while, then what was sent meanwhile reaches the other instance's stream once they can: in order, once each, read once from the database", async () => {
      const { chatId, node } = await chatAwayFromSession();
      const aliceMember = await join(a.app.api, alice, chatId);
      await join(a.app.api, bob, chatId);
      const stream: SseClient = await openSse(`${b.url}/v1/events`, bob.auth);
      const sent = ['before'];
      try {
        await eventually(async () => (await shardSubscribers(node, channelOf(chatId))) === 1);
        await send(a.app.api, alice, chatId, aliceMember, 'before');
        await stream.until((frames) => stream.texts().length >= 1 && frames.length > 0);
        const filledBefore = await metric(b.app, 'messenger_events_filled_total');
        // The node refuses new subscriptions, then drops every subscriber connection it has.
        await onNode(node, (client) => client.call('ACL', 'SETUSER', 'default', '-ssubscribe'));
        try {
          await onNode(node, (client) => client.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
          await eventually(async () => (await shardSubscribers(node, channelOf(chatId))) === 0);
          for (let index = 0; index < 10; index++) {
            await send(a.app.api, alice, chatId, aliceMember, `during ${index}`);
            sent.push(`during ${index}`);
          }
          // Only B's subscription, gone, could have brought them.
          assert.deepEqual(stream.texts(), ['before']);
        } finally {
          await onNode(node, (client) => client.call('ACL', 'SETUSER', 'default', '+ssubscribe'));
        }
        await stream.until(() => stream.texts().length >= sent.length, 30_000, 'the messages sent meanwhile');
        await send(a.app.api, alice, chatId, aliceMember, 'after');
        sent.push('after');
        await stream.until(() => stream.texts().length >= sent.length);
        assert.deepEqual(stream.texts(), sent);
        assert.ok((await metric(b.app, 'messenger_events_filled_total')) - filledBefore >= 10);
      } finally {
        stream.close();
      }
    });
  });
}
