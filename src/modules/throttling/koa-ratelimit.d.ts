// koa-ratelimit's two drivers, used directly: the package's types cover only its middleware.

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

declare module 'koa-ratelimit/limiter/redis.js' {
  import type { Cluster, Redis } from 'ioredis';
  export default class RedisLimiter {
    constructor(options: {
      id: string;
      db: Redis | Cluster;
      max: number;
      duration: number;
      namespace: string;
    });
    /** Counts a request. `remaining` includes that request (0: over the limit); `reset` in Unix seconds. */
    get(): Promise<{ remaining: number; reset: number; total: number }>;
  }
}
