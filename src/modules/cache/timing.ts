/**
 * A value read from the database is written back only when the read ended within this long of the
 * cache being consulted. Invalidation markers (chat generations, revoked sessions) outlive the
 * entries they invalidate by this margin, so a slow reader can never put back what a marker hides.
 */
const WRITE_BACK_WINDOW_MS = 5_000;

/** How long entries are fresh, how long they are kept for stale-if-error, how long markers live. */
export class Timing {
  readonly freshMs: number;
  readonly keepMs: number;
  readonly markerMs: number;

  constructor(ttlSeconds: number, staleSeconds: number) {
    this.freshMs = ttlSeconds * 1000;
    this.keepMs = (ttlSeconds + staleSeconds) * 1000;
    this.markerMs = this.keepMs + WRITE_BACK_WINDOW_MS;
  }

  isFresh(storedAt: number): boolean {
    return Date.now() - storedAt < this.freshMs;
  }

  mayWriteBack(consultedAt: number): boolean {
    return Date.now() - consultedAt < WRITE_BACK_WINDOW_MS;
  }
}
