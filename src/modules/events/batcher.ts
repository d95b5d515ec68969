/** Something that gathers writes and puts them on its connection when told. */
export interface Flushable {
  flush(): void;
}

/**
 * Gathers the writes of many streams for a moment and flushes them together: at most one socket
 * write per stream every `windowMs` instead of one per event and stream, which is most of the cost
 * of fan-out (a system call each). When the streams are quiet the first event goes out at once (on
 * the next timer turn); under a steady flow each waits at most `windowMs`.
 */
export class WriteBatcher {
  private readonly dirty = new Set<Flushable>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;

  constructor(private readonly windowMs: number) {}

  /** `target` has something to write: it is flushed with the others at the end of the window. */
  mark(target: Flushable): void {
    this.dirty.add(target);
    if (this.timer) return;
    const wait = Math.max(0, this.lastFlush + this.windowMs - Date.now());
    this.timer = setTimeout(() => this.flushAll(), wait);
  }

  flushAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastFlush = Date.now();
    const targets = [...this.dirty];
    this.dirty.clear();
    for (const target of targets) target.flush();
  }
}
