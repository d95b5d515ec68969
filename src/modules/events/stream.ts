import type { Metrics } from '../../infra/metrics.js';
import { Positions } from './cursor.js';
import { isEphemeral, type ChatEvent, type StoredEvent } from './model.js';
import type { EventsRepository } from './repository.js';

/** One event as every transport carries it (asyncapi.yml, Frame). */
export interface Frame {
  type: string;
  id?: string;
  data: Record<string, unknown>;
}

const serialized = new WeakMap<object, string>();

/**
 * A frame's `data` as JSON. Every stream that carries an event gets the same `data` object: it is
 * serialised once, however many streams write it.
 */
export function dataJson(frame: Frame): string {
  let json = serialized.get(frame.data);
  if (json === undefined) {
    json = JSON.stringify(frame.data);
    serialized.set(frame.data, json);
  }
  return json;
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

/** What a stream needs from the hub that feeds it. */
export interface StreamHost {
  readonly repository: Pick<EventsRepository, 'after'>;
  readonly metrics: Metrics;
  /** Events read from the database per query while catching up. */
  readonly replayBatch: number;
  /** A chat with no event for this long is left out of ids (cursor.ts). */
  readonly quietSeconds: number;
  /** The stream follows the chat from now on; `dispatched` is the chat's last event known here. */
  follow(stream: Stream, chatId: string, dispatched: number): void;
  unfollow(stream: Stream, chatId: string): void;
  close(stream: Stream): void;
  failed(stream: Stream, error: unknown): void;
  /** False while events may be missed unknown to the streams (the bus away): ids then list every chat. */
  inSync(): boolean;
}

export const isJoin = (event: ChatEvent, userId: string | null): event is StoredEvent =>
  event.kind === 'member' && userId !== null && event.userId === userId && event.data.action === 'joined';
const isLeave = (event: ChatEvent, userId: string | null) =>
  event.kind === 'member' && userId !== null && event.userId === userId && event.data.action === 'left';

/**
 * One client's view of the events: the chats it follows, each with the number of the last event
 * delivered. The hub offers it each chat's events in order; what arrives while the stream is still
 * busy (opening, catching up) waits in its queue behind that work, so live events and catch-ups are
 * delivered in each chat's order, once. A number that skips ahead means this stream is behind the
 * hub (it just opened or resumed): it reads what it misses from the database itself.
 */
export class Stream {
  readonly positions: Positions;
  /** The work in progress, when there is some: offers wait behind it. */
  private tail: Promise<void> | undefined;
  closed = false;

  constructor(
    readonly userId: string | null,
    readonly sink: Sink,
    private readonly host: StreamHost,
  ) {
    this.positions = new Positions(host.quietSeconds);
  }

  get anonymous(): boolean {
    return this.userId === null;
  }

  /** The position after the last event delivered: the id a client resumes from. */
  position(): string {
    return this.positions.encode(Date.now() / 1000, !this.host.inSync());
  }

  /** Runs `task` after the work already queued (skipped once the stream is closed). */
  enqueue(task: () => Promise<void> | void): Promise<void> {
    const current = (this.tail ?? Promise.resolve()).then(
      async () => {
        if (!this.closed) await task();
      },
      () => undefined,
    );
    this.tail = current;
    const done = () => {
      if (this.tail === current) this.tail = undefined;
    };
    current.then(done, done);
    return current;
  }

  /**
   * Offers the chat's next event. `after`, when the hub knows it, is the number of the chat's event
   * before this one: numbers may skip (a send that stored nothing still took one), so an event that
   * follows what the stream has is delivered even when its number is not the next.
   */
  offer(event: ChatEvent, after?: number): void {
    if (this.closed) return;
    // Joining follows the chat at once, so that its next events are offered too.
    if (isJoin(event, this.userId) && !this.positions.has(event.chatId)) this.join(event);
    const failed = (error: unknown) => this.host.failed(this, error);
    if (this.tail) {
      // Delivered later: meanwhile the chat is listed in this stream's ids (it is not quiet).
      if (!isEphemeral(event)) this.positions.touch(event.chatId);
      this.enqueue(() => this.handle(event, after)).catch(failed);
      return;
    }
    // Nothing in progress: handled now, without a queue (the common case, once per stream and event).
    const work = this.handle(event, after);
    if (work) {
      this.positions.touch(event.chatId);
      this.enqueue(() => work).catch(failed);
    }
  }

  private join(event: StoredEvent): void {
    this.positions.set(event.chatId, event.seq - 1);
    this.host.follow(this, event.chatId, event.seq - 1);
  }

  /** Delivers the event, or returns the catch-up it needs first. */
  private handle(event: ChatEvent, after?: number): Promise<void> | undefined {
    if (this.closed) return;
    if (isEphemeral(event)) {
      if (this.anonymous || this.positions.has(event.chatId))
        this.send({ type: event.kind, data: event.data });
      return;
    }
    // A join met after a leave still queued (left and joined again quickly).
    if (isJoin(event, this.userId) && !this.positions.has(event.chatId)) this.join(event);
    let at = this.positions.get(event.chatId);
    if (at === undefined) {
      if (!this.anonymous) return;
      at = 0;
      this.positions.set(event.chatId, 0);
    }
    if (event.seq <= at) return;
    if (event.seq === at + 1 || (after !== undefined && after <= at)) {
      this.deliver(event);
      return;
    }
    return this.catchUp(new Map([[event.chatId, at]]));
  }

  /** Delivers every stored event after the given positions (all of this stream's when omitted). */
  async catchUp(from?: Map<string, number>): Promise<void> {
    const positions = from ?? this.positions.toMap();
    for (;;) {
      const events = await this.host.repository.after(positions, this.host.replayBatch);
      for (const event of events) {
        if (this.closed || this.sink.full?.()) return;
        const at = this.positions.get(event.chatId);
        if (at !== undefined && event.seq <= at) continue;
        if (at === undefined && !this.anonymous) continue;
        // A replay goes at the client's pace: only live events find a reader too slow.
        if (!this.deliver(event, true)) await this.sink.drained();
        this.host.metrics.eventsReplayed.inc();
        positions.set(event.chatId, event.seq);
      }
      if (events.length < this.host.replayBatch) return;
    }
  }

  /** False when the client's buffer is full (a replay then waits for it to drain). */
  private deliver(event: StoredEvent, replay = false): boolean {
    this.positions.set(event.chatId, event.seq);
    if (isLeave(event, this.userId)) {
      this.positions.delete(event.chatId);
      this.host.unfollow(this, event.chatId);
    }
    return this.send({ type: event.kind, id: this.position(), data: event.data }, replay);
  }

  send(frame: Frame, replay = false): boolean {
    if (this.closed) return true;
    const roomLeft = this.sink.write(frame);
    this.host.metrics.eventsSent.inc({ type: frame.type });
    if (roomLeft || replay) return roomLeft;
    this.host.metrics.slowDisconnects.inc();
    this.host.close(this);
    return false;
  }
}

/** Stored events a DeferredSink holds before it pauses a catch-up (which then waits for the transport). */
const DEFERRED_FRAMES = 1000;
/**
 * Typing and presence frames it holds at most: they are of the moment and never replayed, so past
 * this they are dropped, where holding them would close a stream that has not started yet (a user
 * in many chats coming online sends one to each).
 */
const DEFERRED_EPHEMERAL_FRAMES = 100;

/**
 * A sink whose transport comes later: a stream is opened (its starting point read) before the
 * client is told it is open (SSE headers, the WebSocket handshake), so that every event committed
 * after the client sees it open is delivered. Frames written meanwhile wait here and go out first.
 */
export class DeferredSink implements Sink {
  private target: Sink | undefined;
  private queued: Frame[] = [];
  private durable = 0;
  private ephemeral = 0;
  private ended = false;
  private stopping = false;
  private readonly attached: Promise<void>;
  private ready: () => void = () => undefined;

  constructor(readonly transport: Transport) {
    this.attached = new Promise((resolve) => (this.ready = resolve));
  }

  /** The transport is open: what waited is written, and everything goes to it from now on. */
  attach(sink: Sink): void {
    this.target = sink;
    for (const frame of this.queued.splice(0)) sink.write(frame);
    this.durable = this.ephemeral = 0;
    this.ready();
    if (this.stopping) sink.shutdown();
    else if (this.ended) sink.end();
  }

  write(frame: Frame): boolean {
    if (this.target) return this.target.write(frame);
    if (this.ended) return true;
    if (frame.id === undefined) {
      if (this.ephemeral >= DEFERRED_EPHEMERAL_FRAMES) return true;
      this.ephemeral++;
    } else this.durable++;
    this.queued.push(frame);
    return this.durable < DEFERRED_FRAMES;
  }

  heartbeat(): void {
    this.target?.heartbeat();
  }

  shutdown(): void {
    if (this.target) this.target.shutdown();
    else {
      this.stopping = true;
      // A catch-up waiting for the transport stops waiting (its stream is closed).
      this.ready();
    }
  }

  end(): void {
    if (this.target) this.target.end();
    else {
      this.ended = true;
      this.queued = [];
      this.ready();
    }
  }

  full(): boolean {
    return this.target?.full?.() ?? false;
  }

  async drained(): Promise<void> {
    await this.attached;
    await this.target?.drained();
  }
}
