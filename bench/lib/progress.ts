/**
 * A one-line progress bar on stderr, redrawn at most every 100 ms. When stderr is not a terminal
 * (CI logs, files) it prints a plain line at every tenth instead.
 */
export class Progress {
  private done = 0;
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = '',
  ) {}

  /** Adds `count` to what is done. */
  tick(count = 1): void {
    this.set(this.done + count);
  }

  /** Sets what is done, in the units of `total`. */
  set(done: number, note = ''): void {
    this.done = Math.min(done, this.total);
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastDraw >= 100 || this.done === this.total) {
        this.lastDraw = now;
        process.stderr.write(`\r${this.line(now, note)}\x1b[K`);
      }
      return;
    }
    const decile = Math.floor((this.done / this.total) * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      process.stderr.write(`${this.line(now, note)}\n`);
    }
  }

  /** Draws the final state and moves to the next line. */
  finish(note = ''): void {
    this.lastDraw = 0;
    this.set(this.total, note);
    if (this.tty) process.stderr.write('\n');
  }

  private line(now: number, note: string): string {
    const width = 30;
    const fraction = this.total > 0 ? this.done / this.total : 1;
    const filled = Math.round(fraction * width);
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const eta =
      rate > 0 && this.done < this.total ? ` ETA ${Math.ceil((this.total - this.done) / rate)}s` : '';
    const counts = this.unit
      ? ` ${this.done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} ${this.unit}` +
        ` (${Math.round(rate).toLocaleString('en-US')}/s)`
      : '';
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    return `${this.label} [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}%${counts}${eta}${note ? ` ${note}` : ''}`;
  }
}
