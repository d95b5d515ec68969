import type { Context, Middleware } from 'koa';
import type { LoginGuard } from '../auth/index.js';
import type { AppModule, ModuleContext } from '../types.js';
import { budget, loginGuard } from './budget.js';
import { createRateCounter } from './counter.js';

export interface ThrottlingModule extends AppModule {
  /** The stricter budget for sending messages, for the send route (after authentication). */
  sendLimit: Middleware;
  /** Meters login attempts per user name (auth module). */
  loginGuard: LoginGuard;
}

/**
 * Rate limits: a general budget per user (per client IP when anonymous), a stricter one for
 * sending messages and one for failed logins per user name. In memory, or in Redis with REDIS_URL
 * so that every instance draws on the same budgets. `identify` names the user of a request before
 * any route has authenticated it.
 */
export function throttlingModule(
  { config, logger }: ModuleContext,
  identify: (ctx: Context) => Promise<string | null>,
): ThrottlingModule {
  const counter = createRateCounter(config.redisUrl, logger);
  const limits = config.rateLimit;
  const requests = { name: 'requests', max: limits.max, windowMs: limits.windowMs };
  const sends = { name: 'sends', max: limits.sendMax, windowMs: limits.sendWindowMs };
  const loginFailures = {
    name: 'login-failures',
    max: limits.loginFailMax,
    windowMs: limits.loginFailWindowMs,
  };
  return {
    name: 'throttling',
    middleware: [budget(counter, requests, identify)],
    sendLimit: budget(counter, sends, (ctx) => ctx.state.caller?.userId ?? null),
    loginGuard: loginGuard(counter, loginFailures),
    dependencies: counter.monitor ? [counter.monitor] : [],
    close: () => counter.close(),
  };
}
