import type { AppModule, ModuleContext } from '../types.js';
import { budget, loginGuard } from './budget.js';
import { createRateCounter } from './counter.js';

/**
 * Rate limits (CONTRACT.md, Throttling): a general budget per user (per client IP when anonymous),
 * a stricter one for sending messages and one for failed logins per user name. In memory, or in
 * Redis with REDIS_URL so that every instance draws on the same budgets.
 */
export function throttlingModule({ config, extensions, logger }: ModuleContext): AppModule {
  const counter = createRateCounter(config.redisUrl, logger);
  const limits = config.rateLimit;
  const requests = { name: 'requests', max: limits.max, windowMs: limits.windowMs };
  const sends = { name: 'sends', max: limits.sendMax, windowMs: limits.sendWindowMs };
  const loginFailures = {
    name: 'login-failures',
    max: limits.loginFailMax,
    windowMs: limits.loginFailWindowMs,
  };

  // Mounted on the send route, after authentication: the caller is known there.
  extensions.sendLimit = budget(counter, sends, (ctx) => ctx.state.caller?.userId ?? null);
  extensions.loginGuard = loginGuard(counter, loginFailures);
  return {
    name: 'throttling',
    // Runs before any route authenticates: the auth module (built later) is asked at request time.
    middleware: [budget(counter, requests, (ctx) => extensions.identify?.(ctx) ?? null)],
    close: () => counter.close(),
  };
}
