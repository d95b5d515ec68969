import { afterReads, type Deadline } from '../../infra/timeout.js';
import type { StoredEvent } from './model.js';
import type { Stream } from './stream.js';

/** What a chat's feed needs from the hub. */
export interface FeedHost {
  /** Hands the chat's next event, in order, to its streams; `after` is the chat's event before it. */
  release(event: StoredEvent, after: number, feed: ChatFeed): void;
  /** The feed misses events the bus did not bring in time: read them from the database. */
  fill(feeds: ChatFeed[]): void;
  /** How long an event that skips ahead waits for the missing ones before the database is asked. */
  readonly gapWaitMs: number;
  /** How long a failed read waits before it is tried again. */
  readonly retryMs: number;
}

/**
 * One chat as this instance's hub follows it: the streams here that follow it, and the number of the
 * last event handed to them, so that they get its events in order without each checking the
 * database. The bus may bring a chat's events out of order (two instances' sends race to Redis,
 * commits finish in a different order than they were numbered) or drop some (an outage): an event
 * that skips ahead is held until the missing ones arrive; if they do not come within `gapWaitMs`,
 * one read from the database, shared by every stream of the chat, fills the gap. The read also tells
 * a number that was taken but never stored (a send that stored nothing) from one still on its way:
 * each event is handed on with the number of the one before it, so streams need no read of their own.
 */
export class ChatFeed {
  readonly streams = new Set<Stream>();
  /** Events that arrived ahead of a missing one, by number. */
  private readonly held = new Map<number, StoredEvent>();
  /** When the database is read for this chat, unless what it waits for comes first. */
  private timer: Deadline | undefined;
  /** A database read for this chat is under way: events wait for it. */
  private filling = false;
  /** Another read was asked for during this one (it may have started before what it must see). */
  private again = false;
  closed = false;

  constructor(
    readonly chatId: string,
    private last: number,
    private readonly host: FeedHost,
  ) {}

  /** The number of the last event handed to the streams. */
  get head(): number {
    return this.last;
  }

  /** An event from the bus: handed on now when it is the next one, else held. */
  accept(event: StoredEvent): void {
    if (event.seq <= this.last || this.held.has(event.seq)) return;
    this.held.set(event.seq, event);
    if (!this.filling) this.releaseHeld();
  }

  /** Events up to `seq` were handed on outside the feed (the event that made a stream follow). */
  advance(seq: number): void {
    if (seq > this.last) this.last = seq;
  }

  /** Events read from the database after `head`, in order. */
  filled(event: StoredEvent): void {
    if (event.seq <= this.last || this.closed) return;
    this.held.delete(event.seq);
    this.release(event);
  }

  /**
   * Marks the feed as reading from the database (its events wait meanwhile): false when it needs no
   * read of its own (closed, or a read under way, which is then done again once over).
   */
  startFill(): boolean {
    if (this.closed) return false;
    if (this.filling) {
      this.again = true;
      return false;
    }
    this.filling = true;
    this.cancel();
    return true;
  }

  /** The read is over: what came meanwhile goes on; a failed read is tried again later. */
  endFill(failed: boolean): void {
    this.filling = false;
    if (this.closed) return;
    if (failed || this.again) {
      this.again = false;
      this.schedule(failed ? this.host.retryMs : 0);
    } else this.releaseHeld();
  }

  close(): void {
    this.closed = true;
    this.cancel();
    this.held.clear();
  }

  private cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private release(event: StoredEvent): void {
    const after = this.last;
    this.last = event.seq;
    this.host.release(event, after, this);
  }

  private releaseHeld(): void {
    for (const seq of this.held.keys()) if (seq <= this.last) this.held.delete(seq);
    for (let next = this.held.get(this.last + 1); next; next = this.held.get(this.last + 1)) {
      this.held.delete(next.seq);
      this.release(next);
    }
    if (this.held.size === 0) this.cancel();
    else this.schedule(this.host.gapWaitMs);
  }

  private schedule(ms: number): void {
    if (this.timer || this.filling || this.closed) return;
    // When the process was busy past the wait, the missing events may be waiting unread on the
    // bus's connection: they are read first, and the database is asked only if the gap is still there.
    this.timer = afterReads(
      ms,
      () => {
        this.timer = undefined;
        this.host.fill([this]);
      },
      { unref: true },
    );
  }
}
