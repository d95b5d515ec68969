/** Something that gathers writes and puts them on its connection when told. */
export interface Flushable {
  flush(): void;
}

/** The longest a stream's events wait for their write, however many streams there are. */
export const MAX_WINDOW_MS = 1000;

/**
 * Streams written in one go before the flush lets the process read its sockets: a flush of many
 * streams (a system call each) otherwise holds every request's next step (a query's answer, a Redis
 * reply) for its whole length.
 */
export const FLUSH_SLICE = 64;

/**
 * Gathers the writes of many streams for a moment and flushes them together: at most one socket
 * write per stream every window instead of one per event and stream, which is most of the cost of
 * fan-out (a system call each, and as many reads for the clients). When the streams are quiet the
 * first event goes out at once (on the next timer turn); under a steady flow each waits at most the
 * window.
 *
 * The window is `windowMs`, or longer when many streams have something to write: long enough that
 * the streams written at the last flush, written once per window, stay within `writesPerSecond`
 * (0: no such bound), up to MAX_WINDOW_MS. Events then wait a little longer, and the process keeps
 * CPU for the events themselves instead of spending it on system calls until every stream lags.
 * A flush of many streams is written in slices, with the process's socket reads in between.
 */
export class WriteBatcher {
  private readonly dirty = new Set<Flushable>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private currentWindow: number;

  constructor(
    private readonly windowMs: number,
    private readonly writesPerSecond = 0,
  ) {
    this.currentWindow = windowMs;
  }

  /** The wait between two flushes now (ms). */
  get window(): number {
    return this.currentWindow;
  }

  /** `target` has something to write: it is flushed with the others at the end of the window. */
  mark(target: Flushable): void {
    this.dirty.add(target);
    if (this.timer) return;
    const wait = Math.max(0, this.lastFlush + this.currentWindow - Date.now());
    this.timer = setTimeout(() => this.flushAll(), wait);
  }

  flushAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastFlush = Date.now();
    const targets = [...this.dirty];
    this.dirty.clear();
    this.currentWindow =
      this.writesPerSecond > 0
        ? Math.min(MAX_WINDOW_MS, Math.max(this.windowMs, (targets.length * 1000) / this.writesPerSecond))
        : this.windowMs;
    this.flushFrom(targets, 0);
  }

  /** Writes `targets` from `start` on, FLUSH_SLICE at a time, reading the sockets in between. */
  private flushFrom(targets: Flushable[], start: number): void {
    const end = Math.min(targets.length, start + FLUSH_SLICE);
    for (let index = start; index < end; index++) targets[index]!.flush();
    if (end < targets.length) setImmediate(() => this.flushFrom(targets, end));
  }
}
