/** Why a wait on a task ended. */
export type WakeReason = 'notice' | 'timeout' | 'aborted';

/**
 * A watch on one task, registered before it is returned: a finish announced after that wakes it, so
 * the caller reads the task once it holds a watch and never misses the change between read and wait.
 */
export interface TaskWatch {
  /** Resolves at the next notice for the task, after `ms`, or when `signal` aborts. */
  next(ms: number, signal?: AbortSignal): Promise<WakeReason>;
  close(): void;
}

/** The watches of this process, by task id. */
export class Waiters {
  private readonly byTask = new Map<string, Set<() => void>>();

  /** Wakes every watch of `taskId` (a notice is at most once per finish: no queueing). */
  wake(taskId: string): void {
    const wakers = this.byTask.get(taskId);
    if (!wakers) return;
    for (const wake of [...wakers]) wake();
  }

  watch(taskId: string): TaskWatch {
    let wakers = this.byTask.get(taskId);
    if (!wakers) this.byTask.set(taskId, (wakers = new Set()));
    const set = wakers;
    // A notice that arrives while nobody is in next() is kept for the following next().
    let pending = false;
    let wake: (() => void) | undefined;
    const waker = () => {
      if (wake) wake();
      else pending = true;
    };
    set.add(waker);
    return {
      next: (ms, signal) => {
        if (pending) {
          pending = false;
          return Promise.resolve('notice');
        }
        if (signal?.aborted) return Promise.resolve('aborted');
        return new Promise<WakeReason>((resolve) => {
          const done = (reason: WakeReason) => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            wake = undefined;
            resolve(reason);
          };
          const onAbort = () => done('aborted');
          const timer = setTimeout(() => done('timeout'), ms);
          signal?.addEventListener('abort', onAbort, { once: true });
          wake = () => done('notice');
        });
      },
      close: () => {
        set.delete(waker);
        if (set.size === 0 && this.byTask.get(taskId) === set) this.byTask.delete(taskId);
      },
    };
  }

  get size(): number {
    return this.byTask.size;
  }
}
