// koa-ratelimit's memory driver, used directly: the package's types cover only its middleware.

declare module 'koa-ratelimit/limiter/memory.js' {
  export default class MemoryLimiter {
    constructor(options: {
      id: string;
      db: Map<string, unknown>;
      max: number;
      duration: number;
      namespace: string;
    });
    /** Counts a request. `remaining` includes that request (0: over the limit); `reset` in Unix seconds. */
    get(): Promise<{ remaining: number; reset: number; total: number }>;
  }
}
