import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import type { Bus, ResyncScope } from '../src/infra/bus.js';
import { createLogger } from '../src/infra/logger.js';
import { createMetrics } from '../src/infra/metrics.js';
import { DeferredSink, EventHub, type Frame, type Sink, type Stream } from '../src/modules/events/hub.js';
import type { BusMessage, StoredEvent } from '../src/modules/events/model.js';
import type { EventsRepository } from '../src/modules/events/repository.js';
import { eventually } from './support/spawn.js';

/** The stored events and memberships the hub reads, in memory; counts the catch-up reads. */
class FakeLog {
  private readonly events = new Map<string, StoredEvent[]>();
  /** Each chat's last number taken (chats.event_seq): a number may be taken and nothing stored. */
  private readonly taken = new Map<string, number>();
  private readonly members = new Map<string, Set<string>>();
  /** `after()` calls: reads of missed events from the database. */
  reads = 0;

  member(userId: string, chatId: string): void {
    this.members.set(userId, (this.members.get(userId) ?? new Set()).add(chatId));
    this.events.set(chatId, this.events.get(chatId) ?? []);
  }

  /** Commits an event: stored, numbered, not yet published. */
  commit(chatId: string, text: string, extra: Partial<StoredEvent> = {}): StoredEvent {
    const log = this.events.get(chatId) ?? [];
    this.events.set(chatId, log);
    const event: StoredEvent = {
      chatId,
      seq: this.take(chatId),
      kind: 'message',
      data: { chat_id: chatId, text },
      ...extra,
    };
    log.push(event);
    return event;
  }

  /** Takes the chat's next number (a send that then stored nothing). */
  take(chatId: string): number {
    const seq = (this.taken.get(chatId) ?? 0) + 1;
    this.taken.set(chatId, seq);
    return seq;
  }

  join(userId: string, chatId: string): StoredEvent {
    this.member(userId, chatId);
    return this.commit(chatId, '', {
      kind: 'member',
      userId,
      data: { chat_id: chatId, user_id: userId, user_name: userId, action: 'joined' },
    });
  }

  readonly repository = {
    chatsOf: (userId: string | null) =>
      Promise.resolve(
        new Map(
          [...(userId === null ? this.events.keys() : (this.members.get(userId) ?? []))].map((chatId) => [
            chatId,
            { seq: this.taken.get(chatId) ?? 0, activeAt: Date.now() / 1000 },
          ]),
        ),
      ),
    after: (positions: Map<string, number>, limit: number) => {
      this.reads++;
      const found = [...positions].flatMap(([chatId, seq]) =>
        (this.events.get(chatId) ?? []).filter((event) => event.seq > seq),
      );
      return Promise.resolve(found.slice(0, limit));
    },
    joinedAt: (chatId: string, userId: string) =>
      Promise.resolve(
        this.events
          .get(chatId)
          ?.filter((event) => event.kind === 'member' && event.userId === userId)
          .at(-1)?.seq,
      ),
    membershipsOf: (userIds: string[]) =>
      Promise.resolve(new Map(userIds.map((userId) => [userId, [...(this.members.get(userId) ?? [])]]))),
  } as unknown as EventsRepository;
}

/**
 * A bus between this hub and imaginary other instances: what they publish is handed over by the test
 * (`fromElsewhere`), in the order the test chooses; it records what the hub listens to and publishes.
 */
class FakeBus implements Bus<BusMessage> {
  readonly backend = 'memory' as const;
  readonly listened = new Set<string>();
  readonly published: { topics: readonly string[]; message: BusMessage }[] = [];
  private readonly handlers: ((message: BusMessage) => void)[] = [];
  private readonly resyncs: ((scope: ResyncScope) => void)[] = [];
  private readonly holds = new Map<string, Promise<void>>();

  constructor(readonly perTopic = false) {}

  publish(topics: readonly string[], message: BusMessage): void {
    this.published.push({ topics, message });
    this.fromElsewhere(message);
  }
  fromElsewhere(message: BusMessage): void {
    for (const handler of this.handlers) handler(structuredClone(message));
  }
  subscribe(handler: (message: BusMessage) => void): void {
    this.handlers.push(handler);
  }
  async listen(topic: string): Promise<void> {
    this.listened.add(topic);
    await this.holds.get(topic);
  }
  /** `listen(topic)` resolves only once the function returned is called (the subscription taking hold). */
  hold(topic: string): () => void {
    let release!: () => void;
    this.holds.set(topic, new Promise((resolve) => (release = resolve)));
    return release;
  }
  unlisten(topic: string): void {
    this.listened.delete(topic);
  }
  onResync(handler: (scope: ResyncScope) => void): void {
    this.resyncs.push(handler);
  }
  resync(scope: ResyncScope): void {
    for (const resync of this.resyncs) resync(scope);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function collector(): { frames: Frame[]; sink: Sink; texts(): string[] } {
  const frames: Frame[] = [];
  return {
    frames,
    texts: () => frames.filter((frame) => frame.type === 'message').map((frame) => frame.data.text as string),
    sink: {
      transport: 'sse',
      write(frame) {
        frames.push(frame);
        return true;
      },
      heartbeat() {},
      shutdown() {},
      end() {},
      drained: () => Promise.resolve(),
    },
  };
}

function hubOver(bus: FakeBus, log: FakeLog, gapWaitMs: number): EventHub {
  return new EventHub(bus, log.repository, createMetrics(), createLogger('silent'), {
    streamsPerUser: 10,
    replayWindowSeconds: 86_400,
    replayBatch: 1000,
    gapWaitMs,
    retryMs: 50,
    writeBoundMs: 1000,
  });
}

/** `count` users, members of `chatId`, each with an open stream. */
async function streamsOf(hub: EventHub, log: FakeLog, chatId: string, count: number) {
  const readers: (ReturnType<typeof collector> & { stream: Stream })[] = [];
  for (let index = 0; index < count; index++) {
    const userId = randomUUID();
    log.member(userId, chatId);
    const reader = collector();
    readers.push({ ...reader, stream: await hub.open(userId, undefined, reader.sink) });
  }
  return readers;
}

const allHave = (readers: { texts(): string[] }[], count: number) => () =>
  Promise.resolve(readers.every((reader) => reader.texts().length >= count));

describe('event hub: each chat in order before fan-out', () => {
  it("when a chat's events come from the bus out of order, then each of its streams gets them in order, once, with no database read", async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    // The gap wait is never reached: the missing event arrives first.
    const hub = hubOver(bus, log, 60_000);
    const chatId = randomUUID();
    const readers = await streamsOf(hub, log, chatId, 3);
    const [one, two, three, four] = ['one', 'two', 'three', 'four'].map((text) => log.commit(chatId, text));
    for (const event of [two!, three!, one!, four!]) bus.fromElsewhere(event);
    await eventually(allHave(readers, 4));
    for (const reader of readers) assert.deepEqual(reader.texts(), ['one', 'two', 'three', 'four']);
    assert.equal(log.reads, 0);
    hub.shutdown();
  });

  it('when the bus never brings one of a chat’s events, then it is read from the database once for all the chat’s streams', async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    const hub = hubOver(bus, log, 20);
    const chatId = randomUUID();
    const readers = await streamsOf(hub, log, chatId, 3);
    const events = ['one', 'two', 'three'].map((text) => log.commit(chatId, text));
    bus.fromElsewhere(events[0]!);
    bus.fromElsewhere(events[2]!);
    await eventually(allHave(readers, 3));
    for (const reader of readers) assert.deepEqual(reader.texts(), ['one', 'two', 'three']);
    assert.equal(log.reads, 1);
    // The dropped event turning up late changes nothing.
    bus.fromElsewhere(events[1]!);
    bus.fromElsewhere(log.commit(chatId, 'four'));
    await eventually(allHave(readers, 4));
    for (const reader of readers) assert.deepEqual(reader.texts(), ['one', 'two', 'three', 'four']);
    assert.equal(log.reads, 1);
    hub.shutdown();
  });

  it('when the process was busy past the gap wait while the missing event waited unread on the bus, then it is read first and the database is not', async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    const hub = hubOver(bus, log, 50);
    const chatId = randomUUID();
    const readers = await streamsOf(hub, log, chatId, 2);
    const [one, two, three] = ['one', 'two', 'three'].map((text) => log.commit(chatId, text));
    // The missing event comes over a socket, as the bus's messages do.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('data', () => bus.fromElsewhere(two!));
    const sender = await accepted;
    try {
      bus.fromElsewhere(one!);
      bus.fromElsewhere(three!);
      sender.write('two');
      // Busy past the gap wait: its timer is due before the socket is read.
      const started = performance.now();
      while (performance.now() - started < 200);
      await eventually(allHave(readers, 3));
      for (const reader of readers) assert.deepEqual(reader.texts(), ['one', 'two', 'three']);
      assert.equal(log.reads, 0, 'the database was read for an event that had arrived');
    } finally {
      client.destroy();
      sender.destroy();
      server.close();
      hub.shutdown();
    }
  });

  it('when a number was taken but nothing stored with it, then the next event reaches every stream after one read, and none reads by itself', async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    const hub = hubOver(bus, log, 20);
    const chatId = randomUUID();
    const readers = await streamsOf(hub, log, chatId, 3);
    bus.fromElsewhere(log.commit(chatId, 'one'));
    log.take(chatId);
    bus.fromElsewhere(log.commit(chatId, 'three'));
    await eventually(allHave(readers, 2));
    bus.fromElsewhere(log.commit(chatId, 'four'));
    await eventually(allHave(readers, 3));
    for (const reader of readers) assert.deepEqual(reader.texts(), ['one', 'three', 'four']);
    assert.equal(log.reads, 1);
    hub.shutdown();
  });

  it('when the bus resyncs after an outage, then the chats followed are read in one query and each stream gets what it missed, once', async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    const hub = hubOver(bus, log, 60_000);
    const [first, second] = [randomUUID(), randomUUID()];
    const readers = [...(await streamsOf(hub, log, first, 2)), ...(await streamsOf(hub, log, second, 2))];
    for (const chatId of [first, second]) for (const text of ['a', 'b']) log.commit(chatId, text);
    bus.resync('all');
    await eventually(allHave(readers, 2));
    for (const reader of readers) assert.deepEqual(reader.texts(), ['a', 'b']);
    assert.equal(log.reads, 1);
    hub.shutdown();
  });

  it('when a stream resumes behind the others, then it reads what it missed itself while the others get live events at once', async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    const hub = hubOver(bus, log, 60_000);
    const chatId = randomUUID();
    const [live] = await streamsOf(hub, log, chatId, 1);
    const seen = live!.stream.position();
    for (const text of ['one', 'two']) bus.fromElsewhere(log.commit(chatId, text));
    await eventually(allHave([live!], 2));
    const userId = randomUUID();
    log.member(userId, chatId);
    const resumed = collector();
    await hub.open(userId, seen, resumed.sink);
    bus.fromElsewhere(log.commit(chatId, 'three'));
    await eventually(allHave([live!, resumed], 3));
    assert.deepEqual(live!.texts(), ['one', 'two', 'three']);
    assert.deepEqual(resumed.texts(), ['one', 'two', 'three']);
    assert.equal(log.reads, 1);
    hub.shutdown();
  });
});

describe('event hub: presence of a user in many chats', () => {
  for (const perTopic of [false, true]) {
    it(`when a user in three chats comes online, then each chat’s streams get its presence once, in ${perTopic ? 'one bus message per chat (a channel per chat)' : 'one bus message for all (one channel)'}`, async () => {
      const log = new FakeLog();
      const bus = new FakeBus(perTopic);
      const hub = hubOver(bus, log, 60_000);
      const chats = [randomUUID(), randomUUID(), randomUUID()];
      const readers = await Promise.all(chats.map((chatId) => streamsOf(hub, log, chatId, 1)));
      const before = bus.published.length;
      hub.ephemeralMany(
        'presence',
        chats.map((chatId, n) => ({ chatId, data: { user_id: `member-${n}`, online: true } })),
      );
      const publishes = bus.published.slice(before);
      assert.equal(publishes.length, perTopic ? 3 : 1, 'bus messages');
      assert.deepEqual(
        publishes.flatMap((publish) => publish.topics),
        chats,
        'the chats’ topics',
      );
      await eventually(() => Promise.resolve(readers.every(([reader]) => reader!.frames.length > 0)));
      readers.forEach(([reader], n) => {
        const presence = reader!.frames.filter((frame) => frame.type === 'presence');
        assert.deepEqual(
          presence.map((frame) => frame.data),
          [{ chat_id: chats[n], user_id: `member-${n}`, online: true }],
          `chat ${n}`,
        );
      });
      hub.shutdown();
    });
  }
});

describe('event hub: a stream that fails to open', () => {
  it('when reading where it starts fails (the database busy), then the stream is gone: not counted, not offered events, not held against the user’s limit', async () => {
    const log = new FakeLog();
    const bus = new FakeBus();
    const metrics = createMetrics();
    const hub = new EventHub(bus, log.repository, metrics, createLogger('silent'), {
      streamsPerUser: 1,
      replayWindowSeconds: 86_400,
      replayBatch: 1000,
      gapWaitMs: 60_000,
      retryMs: 50,
      writeBoundMs: 1000,
    });
    const chatId = randomUUID();
    const userId = randomUUID();
    log.member(userId, chatId);
    const chatsOf = log.repository.chatsOf.bind(log.repository);
    let failing = true;
    log.repository.chatsOf = (user) => (failing ? Promise.reject(new Error('pool busy')) : chatsOf(user));
    const failed = collector();
    await assert.rejects(hub.open(userId, undefined, failed.sink), /pool busy/);
    assert.equal(hub.size, 0, 'the failed stream is still held');
    const gauge = await metrics.registry.getSingleMetricAsString('messenger_event_streams_open');
    assert.match(gauge, /messenger_event_streams_open\{transport="sse"\} 0/, gauge);
    failing = false;
    // Within the per-user limit of 1: the failed attempt does not count.
    const reader = collector();
    await hub.open(userId, undefined, reader.sink);
    bus.fromElsewhere(log.commit(chatId, 'after'));
    await eventually(allHave([reader], 1));
    assert.deepEqual(reader.texts(), ['after']);
    assert.equal(failed.frames.length, 0, 'the failed stream was offered events');
    hub.shutdown();
  });
});

describe('event hub: a bus channel per chat (sharded pub/sub)', () => {
  it('when streams follow a chat, then the hub listens to it and to their users while they are open, and publishes a join on the user’s topic too', async () => {
    const log = new FakeLog();
    const bus = new FakeBus(true);
    const hub = hubOver(bus, log, 60_000);
    const chatId = randomUUID();
    const [reader] = await streamsOf(hub, log, chatId, 1);
    const userId = reader!.stream.userId!;
    await eventually(() => Promise.resolve(bus.listened.has(chatId)));
    assert.deepEqual([...bus.listened].sort(), [chatId, `user:${userId}`].sort());
    hub.published(log.commit(chatId, 'hi'));
    hub.published(log.join(randomUUID(), chatId));
    assert.deepEqual(
      bus.published.map(({ topics }) => topics.length),
      [1, 2],
    );
    const join = bus.published[1]!.message as StoredEvent;
    assert.equal(bus.published[1]!.topics[1], `user:${join.data.user_id as string}`);
    hub.close(reader!.stream);
    assert.deepEqual([...bus.listened], []);
    hub.shutdown();
  });

  it('when an event commits before the chat’s subscription takes hold, then the chat is read once, when it does', async () => {
    const log = new FakeLog();
    const bus = new FakeBus(true);
    const hub = hubOver(bus, log, 60_000);
    const chatId = randomUUID();
    const subscribed = bus.hold(chatId);
    const [reader] = await streamsOf(hub, log, chatId, 1);
    // Published while this instance did not hear the chat yet: only the database has it.
    log.commit(chatId, 'unheard');
    assert.deepEqual(reader!.texts(), []);
    assert.equal(log.reads, 0);
    subscribed();
    await eventually(allHave([reader!], 1));
    assert.deepEqual(reader!.texts(), ['unheard']);
    assert.equal(log.reads, 1);
    hub.shutdown();
  });

  it('when a user joins a chat nobody here follows, then the join arrives on the user’s topic and the chat’s next events follow it', async () => {
    const log = new FakeLog();
    const bus = new FakeBus(true);
    const hub = hubOver(bus, log, 60_000);
    const userId = randomUUID();
    const reader = collector();
    await hub.open(userId, undefined, reader.sink);
    const chatId = randomUUID();
    bus.fromElsewhere(log.commit(chatId, 'before'));
    bus.fromElsewhere(log.join(userId, chatId));
    await eventually(() => Promise.resolve(bus.listened.has(chatId)));
    bus.fromElsewhere(log.commit(chatId, 'after'));
    await eventually(allHave([reader], 1));
    assert.deepEqual(
      reader.frames.map((frame) => frame.type),
      ['member', 'message'],
    );
    assert.deepEqual(reader.texts(), ['after']);
    hub.shutdown();
  });
});

describe('a stream waiting for its transport (DeferredSink)', () => {
  it('when a user in many chats comes online meanwhile, then presence past the limit is dropped, not taken for a slow client, and stored events still arrive in order', () => {
    const deferred = new DeferredSink('sse');
    const presence = (n: number): Frame => ({ type: 'presence', data: { user_id: `u${n}`, online: true } });
    for (let n = 0; n < 5000; n++) assert.equal(deferred.write(presence(n)), true, `presence ${n} refused`);
    const stored: Frame[] = Array.from({ length: 10 }, (_, n) => ({
      type: 'message',
      id: `id${n}`,
      data: { text: `m${n}` },
    }));
    for (const frame of stored) assert.equal(deferred.write(frame), true);
    const reader = collector();
    deferred.attach(reader.sink);
    assert.equal(reader.frames.filter((frame) => frame.type === 'presence').length, 100);
    assert.deepEqual(reader.texts(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
  });

  it('when stored events pile up past its limit, then it says so (the stream is closed and resumed by id)', () => {
    const deferred = new DeferredSink('sse');
    const results = Array.from({ length: 1000 }, (_, n) =>
      deferred.write({ type: 'message', id: `id${n}`, data: { text: `m${n}` } }),
    );
    assert.equal(results.slice(0, 999).every(Boolean), true, 'refused before the limit');
    assert.equal(results[999], false, 'the limit was not reported');
  });
});
