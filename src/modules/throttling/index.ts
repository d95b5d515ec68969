import type { AppModule, ModuleContext } from '../types.js';
import { budget, loginGuard } from './budget.js';
import { createRateCounter, MemoryCounter } from './counter.js';

const LOGIN_MEMORY_KEYS = 100_000;

/**
 * Rate limits (swagger.yml, Throttling): a general budget per user (per client IP when anonymous),
 * a stricter one for sending messages, and for logins: attempts per client IP, failures per user name
 * and IP, and a per-name ceiling past which attempts are delayed. In memory, or in Redis with
 * REDIS_URL so that every instance draws on the same budgets.
 */
export function throttlingModule({ config, extensions, logger }: ModuleContext): AppModule {
  const limits = config.rateLimit;
  const counter = createRateCounter(config.redisUrl, logger, limits.memoryKeys);
  // Login counters in memory get their own space: a flood of other requests (new addresses, each a
  // key) cannot push a client's failures out and so unlock a name. Redis keys expire by themselves.
  const loginCounter = config.redisUrl ? counter : new MemoryCounter(LOGIN_MEMORY_KEYS);
  const requests = { name: 'requests', max: limits.max, windowMs: limits.windowMs };
  const sends = { name: 'sends', max: limits.sendMax, windowMs: limits.sendWindowMs };
  const login = {
    attempts: { name: 'login-attempts', max: limits.loginMax, windowMs: limits.loginWindowMs },
    failures: { name: 'login-failures', max: limits.loginFailMax, windowMs: limits.loginFailWindowMs },
    nameFailures: {
      name: 'login-name-failures',
      max: limits.loginFailNameMax,
      windowMs: limits.loginFailWindowMs,
    },
    delayMs: limits.loginFailDelayMs,
  };

  // Mounted on the send route, after authentication: the caller is known there.
  extensions.sendLimit = budget(counter, sends, (ctx) => ctx.state.caller?.userId ?? null);
  extensions.loginGuard = loginGuard(loginCounter, login);
  return {
    name: 'throttling',
    // Runs before any route authenticates: the auth module (built later) is asked at request time.
    middleware: [budget(counter, requests, (ctx) => extensions.identify?.(ctx) ?? null)],
    close: async () => {
      await counter.close();
      if (loginCounter !== counter) await loginCounter.close();
    },
  };
}
