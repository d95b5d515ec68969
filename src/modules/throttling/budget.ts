import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { tooManyRequests } from '../../errors.js';
import type { LoginAttempt, LoginGuard } from '../auth/index.js';
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

/** The budgets a login attempt draws on. */
export interface LoginPolicies {
  /** Attempts per client address, whatever the name: caps what one client costs in hashing. */
  attempts: Policy;
  /** Failures per user name and client address: over it, 429 for that client and that name. */
  failures: Policy;
  /** Failures per user name from every client: over it, attempts on the name are delayed. */
  nameFailures: Policy;
  delayMs: number;
}

/**
 * Login attempts. Failures are counted before the password is checked (so parallel guesses cannot
 * slip through together) and a success clears its client's count: what stays counted are the
 * failures. A client that guesses too often is refused for that name; the owner, from another client,
 * is not locked out: past the per-name ceiling every attempt on the name only waits `delayMs`.
 */
export function loginGuard(counter: RateCounter, policies: LoginPolicies): LoginGuard {
  // Names are up to 255 characters of anything: keys get a digest.
  const digest = (text: string) => createHash('sha256').update(text).digest('base64url');
  const nameKey = (attempt: LoginAttempt) => digest(attempt.userName);
  const clientKey = (attempt: LoginAttempt) => digest(`${attempt.ip}\n${attempt.userName}`);
  return {
    async before(attempt) {
      for (const [policy, key] of [
        [policies.attempts, `ip:${attempt.ip}`],
        [policies.failures, clientKey(attempt)],
      ] as const) {
        const verdict = await counter.take(policy, key);
        if (verdict && !verdict.allowed) throw overBudget(verdict);
      }
      const byName = await counter.take(policies.nameFailures, nameKey(attempt));
      if (byName && !byName.allowed && policies.delayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, policies.delayMs));
      }
    },
    async succeeded(attempt) {
      await counter.clear(policies.failures, clientKey(attempt));
    },
  };
}
