import { tooManyRequests } from '../../errors.js';
import type { Bus } from '../../infra/bus.js';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import { decodePosition, encodePosition, type Position } from './cursor.js';
import {
  isEphemeral,
  type ChatEvent,
  type EphemeralKind,
  type EventPublisher,
  type StoredEvent,
} from './model.js';
import type { EventsRepository } from './repository.js';

/** One event as every transport carries it (asyncapi.yml, Frame). */
export interface Frame {
  type: string;
  id?: string;
  data: Record<string, unknown>;
}

export type Transport = 'sse' | 'longpoll' | 'ws';

/** Where a stream's frames go: one open SSE response, WebSocket or waiting long poll. */
export interface Sink {
  readonly transport: Transport;
  /** Writes without waiting; false when the client is too far behind (the stream is then closed). */
  write(frame: Frame): boolean;
  heartbeat(): void;
  /** Server shutting down: tell the client to come back, then close. */
  shutdown(): void;
  /** The stream is over: release the connection if it is still open. */
  end(): void;
  /** A long poll stops taking events once its answer is big enough (the rest comes next time). */
  full?(): boolean;
  /** Resolves once the client has read what is buffered (or is gone). */
  drained(): Promise<void>;
}

export interface HubOptions {
  streamsPerUser: number;
  replayWindowSeconds: number;
  /** Events read from the database per query while catching up. */
  replayBatch: number;
}

const isJoin = (event: ChatEvent, userId: string | null) =>
  event.kind === 'member' && userId !== null && event.userId === userId && event.data.action === 'joined';
const isLeave = (event: ChatEvent, userId: string | null) =>
  event.kind === 'member' && userId !== null && event.userId === userId && event.data.action === 'left';

/**
 * One client's view of the events: the chats it follows, each with the number of the last event
 * delivered. Everything it is offered goes through one queue, so live events, gap fills and
 * catch-ups are delivered in each chat's order, once.
 */
export class Stream {
  readonly positions = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();
  closed = false;

  constructor(
    readonly userId: string | null,
    readonly sink: Sink,
    private readonly hub: EventHub,
  ) {}

  get anonymous(): boolean {
    return this.userId === null;
  }

  /** The position after the last event delivered: the id a client resumes from. */
  position(): string {
    return encodePosition({ at: Date.now() / 1000, chats: this.positions });
  }

  enqueue(task: () => Promise<void> | void): Promise<void> {
    this.queue = this.queue.then(
      async () => {
        if (!this.closed) await task();
      },
      () => undefined,
    );
    return this.queue;
  }

  offer(event: ChatEvent): void {
    void this.enqueue(() => this.handle(event)).catch((error: unknown) => this.hub.failed(this, error));
  }

  private async handle(event: ChatEvent): Promise<void> {
    if (isEphemeral(event)) {
      if (this.anonymous || this.positions.has(event.chatId))
        this.send({ type: event.kind, data: event.data });
      return;
    }
    if (isJoin(event, this.userId) && !this.positions.has(event.chatId)) {
      this.positions.set(event.chatId, event.seq - 1);
      this.hub.follow(this, event.chatId);
    }
    let at = this.positions.get(event.chatId);
    if (at === undefined) {
      if (!this.anonymous) return;
      at = 0;
      this.positions.set(event.chatId, 0);
    }
    if (event.seq <= at) return;
    // A number that skips ahead means events of this chat were missed (another instance's event
    // still on its way, or dropped by the bus): the database has them, in order.
    if (event.seq === at + 1) this.deliver(event);
    else await this.catchUp(new Map([[event.chatId, at]]));
  }

  /** Delivers every stored event after the given positions (all of this stream's when omitted). */
  async catchUp(from?: Map<string, number>): Promise<void> {
    const positions = new Map(from ?? this.positions);
    for (;;) {
      const events = await this.hub.repository.after(positions, this.hub.options.replayBatch);
      for (const event of events) {
        if (this.closed || this.sink.full?.()) return;
        const at = this.positions.get(event.chatId);
        if (at !== undefined && event.seq <= at) continue;
        if (at === undefined && !this.anonymous) continue;
        // A replay goes at the client's pace: only live events find a reader too slow.
        if (!this.deliver(event, true)) await this.sink.drained();
        this.hub.metrics.eventsReplayed.inc();
        positions.set(event.chatId, event.seq);
      }
      if (events.length < this.hub.options.replayBatch) return;
    }
  }

  /** False when the client's buffer is full (a replay then waits for it to drain). */
  private deliver(event: StoredEvent, replay = false): boolean {
    this.positions.set(event.chatId, event.seq);
    const left = isLeave(event, this.userId);
    if (left) {
      this.positions.delete(event.chatId);
      this.hub.unfollow(this, event.chatId);
    }
    return this.send({ type: event.kind, id: this.position(), data: event.data }, replay);
  }

  send(frame: Frame, replay = false): boolean {
    if (this.closed) return true;
    const roomLeft = this.sink.write(frame);
    this.hub.metrics.eventsSent.inc({ type: frame.type });
    if (roomLeft || replay) return roomLeft;
    this.hub.metrics.slowDisconnects.inc();
    this.hub.close(this);
    return false;
  }
}

/**
 * This instance's open streams, fed by the event bus: it routes each event to the streams of the
 * chat's members here, and makes the streams catch up from the database when the bus may have
 * dropped events.
 */
export class EventHub implements EventPublisher {
  private readonly streams = new Set<Stream>();
  private readonly byChat = new Map<string, Set<Stream>>();
  private readonly byUser = new Map<string, Set<Stream>>();
  /** Anonymous streams, and streams still reading their chats: they are offered every event. */
  private readonly everything = new Set<Stream>();
  private readonly listeners: ((userId: string, open: boolean) => void)[] = [];

  constructor(
    private readonly bus: Bus<ChatEvent>,
    readonly repository: EventsRepository,
    readonly metrics: Metrics,
    private readonly logger: Logger,
    readonly options: HubOptions,
  ) {
    bus.subscribe((event) => this.dispatch(event));
    bus.onResync(() => {
      for (const stream of this.streams) void stream.enqueue(() => stream.catchUp());
    });
  }

  /** A durable event has committed: every member's streams, on every instance, get it. */
  published(event: StoredEvent): void {
    this.bus.publish({ ...event });
  }

  /** A typing or presence event: delivered to the streams open now, never stored. */
  ephemeral(kind: EphemeralKind, chatId: string, data: Record<string, unknown>): void {
    this.bus.publish({ kind, chatId, data: { chat_id: chatId, ...data } });
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

  private dispatch(event: ChatEvent): void {
    const targets = new Set<Stream>(this.everything);
    for (const stream of this.byChat.get(event.chatId) ?? []) targets.add(stream);
    if (!isEphemeral(event) && event.kind === 'member' && event.userId) {
      for (const stream of this.byUser.get(event.userId) ?? []) targets.add(stream);
    }
    for (const stream of targets) stream.offer(event);
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
    { lenient = false }: { lenient?: boolean } = {},
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
    if (userId !== null) {
      const mine = this.byUser.get(userId) ?? new Set();
      mine.add(stream);
      this.byUser.set(userId, mine);
      if (mine.size === 1) for (const listener of this.listeners) listener(userId, true);
    }
    // Registered before reading positions: an event committed meanwhile waits in the stream's
    // queue and is then either already counted or delivered.
    await stream.enqueue(async () => {
      const current = await this.repository.chatsOf(userId);
      const tooOld =
        unreadable || (from !== undefined && from.at < Date.now() / 1000 - this.options.replayWindowSeconds);
      for (const [chatId, seq] of current) {
        let at = seq;
        if (from && !tooOld) {
          const known = from.chats.get(chatId);
          if (known !== undefined) at = Math.min(known, seq);
          else if (userId !== null) {
            const joinedAt = await this.repository.joinedAt(chatId, userId);
            if (joinedAt !== undefined && joinedAt <= seq) at = joinedAt - 1;
          }
        }
        stream.positions.set(chatId, at);
        this.follow(stream, chatId);
      }
      if (!stream.anonymous) this.everything.delete(stream);
      if (tooOld) stream.send({ type: 'reset', id: stream.position(), data: { reason: 'gap-too-old' } });
      else if (from) await stream.catchUp();
    });
    // A client gone while its stream opened leaves a closed stream: callers check `closed`.
    return stream;
  }

  follow(stream: Stream, chatId: string): void {
    const streams = this.byChat.get(chatId) ?? new Set();
    streams.add(stream);
    this.byChat.set(chatId, streams);
  }

  unfollow(stream: Stream, chatId: string): void {
    const streams = this.byChat.get(chatId);
    streams?.delete(stream);
    if (streams?.size === 0) this.byChat.delete(chatId);
  }

  close(stream: Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.streams.delete(stream);
    this.everything.delete(stream);
    for (const chatId of stream.positions.keys()) this.unfollow(stream, chatId);
    this.metrics.openStreams.dec({ transport: stream.sink.transport });
    stream.sink.end();
    if (stream.userId !== null) {
      const mine = this.byUser.get(stream.userId);
      mine?.delete(stream);
      if (mine?.size === 0) {
        this.byUser.delete(stream.userId);
        for (const listener of this.listeners) listener(stream.userId, false);
      }
    }
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
