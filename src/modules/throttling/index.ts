import type { Context, Middleware } from 'koa';
import type { LoginGuard } from '../auth/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { budget, loginGuard } from './budget.js';
import { createRateCounter, MemoryCounter } from './counter.js';

const LOGIN_MEMORY_KEYS = 100_000;

export interface ThrottlingModule extends AppModule {
  /** The stricter budget for sending messages, for the send route (after authentication). */
  sendLimit: Middleware;
  /** Meters login attempts per user name (auth module). */
  loginGuard: LoginGuard;
}

/**
 * Rate limits: a general budget per user (per client IP when anonymous), a stricter one for
 * sending messages, and for logins: attempts per client IP, failures per user name and IP, and a
 * per-name ceiling past which attempts are delayed. In memory, or in Redis with REDIS_URL so that
 * every instance draws on the same budgets. `identify` names the user of a request before
 * any route has authenticated it.
 */
export function throttlingModule(
  { config, logger }: ModuleContext,
  identify: (ctx: Context) => Promise<string | null>,
): ThrottlingModule {
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
  return {
    name: 'throttling',
    middleware: [budget(counter, requests, identify)],
    sendLimit: budget(counter, sends, (ctx) => ctx.state.caller?.userId ?? null),
    loginGuard: loginGuard(loginCounter, login),
    dependencies: counter.monitor ? [counter.monitor] : [],
    close: async () => {
      await counter.close();
      if (loginCounter !== counter) await loginCounter.close();
    },
  };
}
