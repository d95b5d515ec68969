import { tooManyRequests } from '../../errors.js';
import type { Bus, ResyncScope } from '../../infra/bus.js';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import { decodePosition, quietTimes, type Position } from './cursor.js';
import { ChatFeed, type FeedHost } from './feed.js';
import {
  isEphemeral,
  type BusMessage,
  type ChatEvent,
  type EphemeralKind,
  type EventPublisher,
  type StoredEvent,
} from './model.js';
import type { EventsRepository } from './repository.js';
import { isJoin, Stream, type Sink, type StreamHost } from './stream.js';

export { dataJson, DeferredSink, type Frame, type Sink, type Stream, type Transport } from './stream.js';

export interface HubOptions {
  streamsPerUser: number;
  replayWindowSeconds: number;
  /** Events read from the database per query while catching up. */
  replayBatch: number;
  /** How long an event that skips ahead waits for the missing ones before the database is read. */
  gapWaitMs: number;
  /** How long a failed database read for a chat waits before it is tried again. */
  retryMs: number;
  /** The longest a write that numbers an event may take (database timeouts): see cursor.ts. */
  writeBoundMs: number;
}

/** The bus topics: one per chat, and one per user for the events that make them follow a chat. */
const chatTopic = (chatId: string) => chatId;
const userTopic = (userId: string) => `user:${userId}`;
const userOfTopic = (topic: string) => (topic.startsWith('user:') ? topic.slice(5) : undefined);

/**
 * This instance's open streams, fed by the event bus. For each chat followed here it keeps a feed
 * that hands the chat's events to its streams in order (holding an event that skips ahead, and
 * reading a gap the bus leaves from the database once for all of them); a stream reads from the
 * database itself only when it is behind the hub (opening, resuming). When the bus has a channel
 * per topic, the hub listens to the chats followed here and to the users with streams here.
 */
export class EventHub implements EventPublisher, StreamHost, FeedHost {
  private readonly streams = new Set<Stream>();
  private readonly feeds = new Map<string, ChatFeed>();
  private readonly byUser = new Map<string, Set<Stream>>();
  /** For each user with streams here: resolves once the bus carries their joins here. */
  private readonly userHeard = new Map<string, Promise<void>>();
  /** Streams offered every event: those still reading their chats, and anonymous ones. */
  private readonly everything = new Set<Stream>();
  private anonymousStreams = 0;
  /** Feeds whose chat the bus has just started carrying here: read once it does. */
  private subscribing: ChatFeed[] = [];
  private readonly listeners: ((userId: string, open: boolean) => void)[] = [];
  readonly replayBatch: number;
  readonly gapWaitMs: number;
  readonly retryMs: number;
  readonly quietSeconds: number;
  private readonly cutSeconds: number;

  constructor(
    private readonly bus: Bus<BusMessage>,
    readonly repository: EventsRepository,
    readonly metrics: Metrics,
    private readonly logger: Logger,
    readonly options: HubOptions,
  ) {
    this.replayBatch = options.replayBatch;
    this.gapWaitMs = options.gapWaitMs;
    this.retryMs = options.retryMs;
    ({ quietSeconds: this.quietSeconds, cutSeconds: this.cutSeconds } = quietTimes(options.writeBoundMs));
    bus.subscribe((event) => this.receive(event));
    bus.onResync((scope) => this.resync(scope));
  }

  /** A durable event has committed: every member's streams, on every instance, get it. */
  published(event: StoredEvent): void {
    const topics = [chatTopic(event.chatId)];
    // The streams of a user who joins follow the chat from its join: their instances hear it too.
    if (event.userId && isJoin(event, event.userId)) topics.push(userTopic(event.userId));
    this.bus.publish(topics, { ...event });
  }

  /** A typing or presence event: delivered to the streams open now, never stored. */
  ephemeral(kind: EphemeralKind, chatId: string, data: Record<string, unknown>): void {
    this.ephemeralMany(kind, [{ chatId, data }]);
  }

  /**
   * Typing or presence in several chats at once (a user in many chats coming online): one bus
   * message when every instance hears every message, instead of one per chat for every instance to
   * take in (and Redis to pass on) at once. With a channel per chat, one message per chat still
   * (an instance hears a message once for each of its topics it listens to).
   */
  ephemeralMany(kind: EphemeralKind, items: { chatId: string; data: Record<string, unknown> }[]): void {
    const events = items.map(({ chatId, data }) => ({ kind, chatId, data: { chat_id: chatId, ...data } }));
    if (this.bus.perTopic || events.length === 1) {
      for (const event of events) this.bus.publish([chatTopic(event.chatId)], event);
    } else if (events.length > 1) {
      this.bus.publish(
        events.map((event) => chatTopic(event.chatId)),
        { kind: 'batch', events },
      );
    }
  }

  /** Hears when a user's first stream on this instance opens and their last one closes. */
  onPresence(listener: (userId: string, open: boolean) => void): void {
    this.listeners.push(listener);
  }

  isOpenHere(userId: string): boolean {
    return (this.byUser.get(userId)?.size ?? 0) > 0;
  }

  usersHere(): string[] {
    return [...this.byUser.keys()];
  }

  private receive(message: BusMessage): void {
    if (message.kind === 'batch') {
      for (const event of message.events) this.receive(event);
      return;
    }
    const event = message;
    const feed = this.feeds.get(event.chatId);
    if (isEphemeral(event)) {
      this.offer(event, feed?.streams);
      return;
    }
    // Anonymous streams get every chat: each chat seen is ordered from its first event on.
    if (feed) feed.accept(event);
    else if (this.anonymousStreams > 0) this.feedOf(event.chatId, event.seq - 1).accept(event);
    else {
      // Nobody here follows the chat: only a join (or a stream still opening) can want it.
      this.offer(event);
      this.feeds.get(event.chatId)?.advance(event.seq);
    }
  }

  /** FeedHost: the chat's next event, in order. */
  release(event: StoredEvent, after: number, feed: ChatFeed): void {
    this.offer(event, feed.streams, after);
  }

  private offer(event: ChatEvent, followers?: Set<Stream>, after?: number): void {
    const member = !isEphemeral(event) && event.kind === 'member' && event.userId;
    const users = member ? this.byUser.get(member) : undefined;
    if (this.everything.size === 0 && !users) {
      for (const stream of followers ?? []) stream.offer(event, after);
      return;
    }
    const targets = new Set<Stream>(this.everything);
    for (const stream of followers ?? []) targets.add(stream);
    for (const stream of users ?? []) targets.add(stream);
    for (const stream of targets) stream.offer(event, after);
  }

  /** FeedHost: reads what the feeds miss from the database, in one query per batch for all. */
  fill(feeds: ChatFeed[]): void {
    const todo = feeds.filter((feed) => feed.startFill());
    if (todo.length === 0) return;
    void this.read(todo);
  }

  private async read(feeds: ChatFeed[]): Promise<void> {
    const byChat = new Map(feeds.map((feed) => [feed.chatId, feed]));
    const positions = new Map(feeds.map((feed) => [feed.chatId, feed.head]));
    let failed = false;
    try {
      for (;;) {
        const events = await this.repository.after(positions, this.replayBatch);
        this.metrics.eventsFilled.inc(events.length);
        for (const event of events) {
          byChat.get(event.chatId)?.filled(event);
          positions.set(event.chatId, event.seq);
        }
        if (events.length < this.replayBatch) break;
      }
    } catch (error) {
      failed = true;
      this.logger.warn({ err: error }, 'reading missed events failed: tried again shortly');
    }
    for (const feed of feeds) feed.endFill(failed);
  }

  /** The bus may have dropped events: the chats' feeds read them, the users' streams their joins. */
  private resync(scope: ResyncScope): void {
    const topics = scope === 'all' ? undefined : new Set(scope);
    this.fill([...this.feeds.values()].filter((feed) => !topics || topics.has(chatTopic(feed.chatId))));
    const users = topics
      ? [...topics].map(userOfTopic).filter((userId) => userId !== undefined)
      : this.usersHere();
    if (users.length > 0) {
      this.rejoin(users).catch((error: unknown) => this.logger.warn({ err: error }, 'event resync failed'));
    }
  }

  /** Streams of `users` start following the chats those users joined while the bus was away. */
  private async rejoin(users: string[]): Promise<void> {
    const memberships = await this.repository.membershipsOf(users);
    for (const [userId, chatIds] of memberships) {
      for (const stream of this.byUser.get(userId) ?? []) {
        const missing = chatIds.filter((chatId) => !stream.positions.has(chatId));
        if (missing.length === 0) continue;
        void stream
          .enqueue(async () => {
            const from = new Map<string, number>();
            for (const chatId of missing) {
              if (stream.positions.has(chatId)) continue;
              const joinedAt = await this.repository.joinedAt(chatId, userId);
              if (joinedAt === undefined) continue;
              stream.positions.set(chatId, joinedAt - 1);
              this.follow(stream, chatId, joinedAt - 1);
              from.set(chatId, joinedAt - 1);
            }
            if (from.size > 0) await stream.catchUp(from);
          })
          .catch((error: unknown) => this.failed(stream, error));
      }
    }
  }

  /**
   * Opens a stream for `userId` from `since` (a position this server wrote), or from now. A position
   * older than the replay window starts with a `reset` frame; a chat joined after it replays from the
   * join. 429 over the per-user limit.
   */
  async open(
    userId: string | null,
    since: string | undefined,
    sink: Sink,
    {
      lenient = false,
      awaitCatchUp = true,
    }: {
      lenient?: boolean;
      /**
       * False: open() returns once the stream's starting point is read, and the catch-up (a resume)
       * follows in the stream's queue, at the client's pace: the caller answers the handshake in
       * between (the sink is a DeferredSink until then).
       */
      awaitCatchUp?: boolean;
    } = {},
  ): Promise<Stream> {
    let from: Position | undefined;
    let unreadable = false;
    try {
      from = since === undefined ? undefined : decodePosition(since);
    } catch (error) {
      // An SSE client resends whatever id it last saw: one this server cannot read starts over.
      if (!lenient) throw error;
      unreadable = true;
    }
    this.checkLimit(userId);
    const stream = new Stream(userId, sink, this);
    this.streams.add(stream);
    this.everything.add(stream);
    this.metrics.openStreams.inc({ transport: sink.transport });
    if (userId === null) this.anonymousStreams++;
    const joins = userId === null ? undefined : this.addUserStream(userId, stream);
    // Registered before reading positions: an event committed meanwhile waits in the stream's
    // queue and is then either already counted or delivered. The user's joins are heard first.
    // A stream that cannot read where it starts (the database busy or away) is closed: the caller
    // answers with the error, and nothing of it stays (counted, offered events, held against the limit).
    await stream
      .enqueue(async () => {
        await joins;
        const current = await this.repository.chatsOf(userId);
        const tooOld =
          unreadable ||
          (from !== undefined && from.at < Date.now() / 1000 - this.options.replayWindowSeconds);
        const resumed = from && !tooOld ? from : undefined;
        // Chats a (version 2) position left out as quiet: where each starts is read in one query.
        const quiet =
          resumed && !resumed.complete ? [...current.keys()].filter((id) => !resumed.chats.has(id)) : [];
        const starts =
          resumed && quiet.length > 0
            ? await this.repository.quietStarts(userId, quiet, resumed.at - this.cutSeconds)
            : undefined;
        for (const [chatId, { seq, activeAt }] of current) {
          let at = seq;
          let active = activeAt;
          const known = resumed?.chats.get(chatId);
          if (known !== undefined) {
            at = Math.min(known, seq);
            active = Date.now() / 1000;
          } else if (starts?.has(chatId)) {
            at = Math.min(starts.get(chatId)!, seq);
          } else if (resumed?.complete && userId !== null) {
            // A version 1 position lists every chat: one it lacks was joined after it.
            const joinedAt = await this.repository.joinedAt(chatId, userId);
            if (joinedAt !== undefined && joinedAt <= seq) at = joinedAt - 1;
          }
          stream.positions.set(chatId, at, active);
          if (stream.anonymous) this.feedOf(chatId, seq);
          else this.follow(stream, chatId, seq);
        }
        if (!stream.anonymous) this.everything.delete(stream);
        if (tooOld) stream.send({ type: 'reset', id: stream.position(), data: { reason: 'gap-too-old' } });
        else if (from && awaitCatchUp) await stream.catchUp();
        else if (from) {
          stream.enqueue(() => stream.catchUp()).catch((error: unknown) => this.failed(stream, error));
        }
      })
      .catch((error: unknown) => {
        this.close(stream);
        throw error;
      });
    // A client gone while its stream opened leaves a closed stream: callers check `closed`.
    return stream;
  }

  private addUserStream(userId: string, stream: Stream): Promise<void> {
    const mine = this.byUser.get(userId) ?? new Set();
    mine.add(stream);
    this.byUser.set(userId, mine);
    let heard = this.userHeard.get(userId);
    if (!heard) {
      heard = this.bus.listen(userTopic(userId));
      this.userHeard.set(userId, heard);
      for (const listener of this.listeners) listener(userId, true);
    }
    return heard;
  }

  /** The chat's feed, made when it has none with `dispatched` as the last event known here. */
  private feedOf(chatId: string, dispatched: number): ChatFeed {
    let feed = this.feeds.get(chatId);
    if (!feed) {
      feed = new ChatFeed(chatId, dispatched, this);
      this.feeds.set(chatId, feed);
      if (this.bus.perTopic) this.listenTo(feed);
    }
    return feed;
  }

  /** Starts hearing the chat; what was published before that is read from the database once. */
  private listenTo(feed: ChatFeed): void {
    this.subscribing.push(feed);
    if (this.subscribing.length > 1) return;
    // The feeds made in one turn (a stream's chats) are read together.
    queueMicrotask(() => {
      const feeds = this.subscribing.splice(0);
      void Promise.all(feeds.map((each) => this.bus.listen(chatTopic(each.chatId)))).then(() =>
        this.fill(feeds),
      );
    });
  }

  follow(stream: Stream, chatId: string, dispatched: number): void {
    this.feedOf(chatId, dispatched).streams.add(stream);
  }

  unfollow(stream: Stream, chatId: string): void {
    const feed = this.feeds.get(chatId);
    if (!feed) return;
    feed.streams.delete(stream);
    if (feed.streams.size === 0 && this.anonymousStreams === 0) this.drop(feed);
  }

  private drop(feed: ChatFeed): void {
    feed.close();
    this.feeds.delete(feed.chatId);
    if (this.bus.perTopic) this.bus.unlisten(chatTopic(feed.chatId));
  }

  close(stream: Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.streams.delete(stream);
    this.everything.delete(stream);
    for (const chatId of stream.positions.keys()) this.unfollow(stream, chatId);
    this.metrics.openStreams.dec({ transport: stream.sink.transport });
    stream.sink.end();
    if (stream.userId === null) {
      // The last anonymous stream gone: chats nobody follows are no longer ordered here.
      if (--this.anonymousStreams === 0) {
        for (const feed of [...this.feeds.values()]) if (feed.streams.size === 0) this.drop(feed);
      }
      return;
    }
    const mine = this.byUser.get(stream.userId);
    mine?.delete(stream);
    if (mine?.size === 0) {
      this.byUser.delete(stream.userId);
      this.userHeard.delete(stream.userId);
      this.bus.unlisten(userTopic(stream.userId));
      for (const listener of this.listeners) listener(stream.userId, false);
    }
  }

  /** StreamHost: false while the bus is away (events may be missed without any stream knowing). */
  inSync(): boolean {
    return !(this.bus.monitor?.isDown ?? false);
  }

  failed(stream: Stream, error: unknown): void {
    this.logger.warn({ err: error }, 'event stream failed: closed (the client resumes from its last id)');
    this.close(stream);
  }

  /** 429 when the user already holds the most streams allowed on this instance. */
  checkLimit(userId: string | null): void {
    if (userId !== null && (this.byUser.get(userId)?.size ?? 0) >= this.options.streamsPerUser) {
      throw tooManyRequests(1);
    }
  }

  heartbeat(): void {
    for (const stream of this.streams) stream.sink.heartbeat();
  }

  /** Tells every client to reconnect (elsewhere) and closes its stream. */
  shutdown(): void {
    for (const stream of [...this.streams]) {
      stream.sink.shutdown();
      this.close(stream);
    }
  }

  get size(): number {
    return this.streams.size;
  }
}
