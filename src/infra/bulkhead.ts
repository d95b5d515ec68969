/** Thrown when a Bulkhead has no room: its slots and its queue are full, or the key holds its share. */
export class BulkheadFullError extends Error {
  override name = 'BulkheadFullError';
}

/**
 * Runs at most `concurrency` tasks at once and lets at most `queueMax` more wait, first come first
 * served; one key (a client) may hold at most `perKeyMax` of the running and waiting places. Work
 * beyond that is refused at once rather than queued: a long queue only turns overload into latency
 * for everyone.
 */
export class Bulkhead {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly held = new Map<string, number>();

  constructor(private readonly options: { concurrency: number; queueMax: number; perKeyMax: number }) {}

  /** Tasks running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const { concurrency, queueMax, perKeyMax } = this.options;
    const mine = this.held.get(key) ?? 0;
    if (mine >= perKeyMax) throw new BulkheadFullError('this client already has its share');
    if (this.running >= concurrency && this.waiting.length >= queueMax) {
      throw new BulkheadFullError('no free slot and the queue is full');
    }
    this.held.set(key, mine + 1);
    try {
      if (this.running >= concurrency) {
        await new Promise<void>((start) => this.waiting.push(start));
      } else {
        this.running++;
      }
      try {
        return await task();
      } finally {
        const next = this.waiting.shift();
        // The slot passes straight to the next waiter, so `running` never dips for a newcomer to take.
        if (next) next();
        else this.running--;
      }
    } finally {
      const left = (this.held.get(key) ?? 1) - 1;
      if (left === 0) this.held.delete(key);
      else this.held.set(key, left);
    }
  }
}
