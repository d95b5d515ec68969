export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Rejects with TimeoutError when `promise` has not settled within `ms` (the work itself goes on). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A pending `afterReads`: cancelled before it runs, it never does. */
export interface Deadline {
  cancel(): void;
}

/**
 * Runs `fn` once `ms` have passed and the event loop has then read its sockets. Timers run before a
 * turn's reads, so a process that was busy past `ms` would otherwise act before taking in what
 * arrived meanwhile (an answer, a missing event) and settles the matter instead: a caller cancels
 * the deadline when that comes. `unref`: the deadline alone keeps no process alive.
 */
export function afterReads(ms: number, fn: () => void, { unref = false } = {}): Deadline {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(fn);
  }, ms);
  if (unref) timer.unref();
  return {
    cancel() {
      clearTimeout(timer);
      clearImmediate(immediate);
    },
  };
}
