import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { tooManyRequests } from '../../errors.js';
import type { LoginGuard } from '../auth/index.js';
import type { Policy, RateCounter, Verdict } from './counter.js';

const headersOf = (verdict: Verdict) => ({
  'RateLimit-Limit': String(verdict.limit),
  'RateLimit-Remaining': String(verdict.remaining),
  'RateLimit-Reset': String(verdict.resetSeconds),
});

/**
 * Shows a verdict in the RateLimit-* headers, unless another budget of the same request has less
 * left (the general budget and the stricter one for sending both count a POST of a message).
 */
function report(ctx: Context, verdict: Verdict): void {
  const shown = ctx.response.get('RateLimit-Remaining');
  if (shown !== '' && Number(shown) < verdict.remaining) return;
  ctx.set(headersOf(verdict));
}

/** 429 with Retry-After, and the headers of the budget that refused (the error middleware sets them). */
function overBudget(verdict: Verdict) {
  const error = tooManyRequests(Math.max(1, verdict.resetSeconds));
  Object.assign(error.headers, headersOf(verdict));
  return error;
}

/**
 * Counts the request against `policy` for its user, or its client IP when anonymous. The headers are
 * set before the request goes on, so every answer carries them, errors included; over budget → 429.
 * When the counter cannot answer the request goes through (fail open).
 */
export function budget(
  counter: RateCounter,
  policy: Policy,
  userOf: (ctx: Context) => Promise<string | null> | string | null,
): Middleware {
  return async (ctx, next) => {
    const userId = await userOf(ctx);
    const verdict = await counter.take(policy, userId === null ? `ip:${ctx.ip}` : `user:${userId}`);
    if (verdict && !verdict.allowed) throw overBudget(verdict);
    if (verdict) report(ctx, verdict);
    await next();
  };
}

/**
 * Failed logins per user name. Every attempt is counted before the password is checked (so parallel
 * guesses cannot slip through together) and a success clears the count: what stays counted are the
 * failures. Over budget even the right password gets 429.
 */
export function loginGuard(counter: RateCounter, policy: Policy): LoginGuard {
  // Names are up to 255 characters of anything: keys get a digest.
  const keyOf = (userName: string) => createHash('sha256').update(userName).digest('base64url');
  return {
    async before(userName) {
      const verdict = await counter.take(policy, keyOf(userName));
      if (verdict && !verdict.allowed) throw overBudget(verdict);
    },
    async succeeded(userName) {
      await counter.clear(policy, keyOf(userName));
    },
  };
}
