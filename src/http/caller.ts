import type { Context, Middleware } from 'koa';
import type { Caller } from '../modules/types.js';

/** Used when no module authenticates (AUTH_DISABLED, or auth not in APPS). */
export const anonymous: Middleware = async (ctx, next) => {
  ctx.state.caller = { userId: null };
  await next();
};

export function callerOf(ctx: Context): Caller {
  const caller = ctx.state.caller;
  if (!caller) throw new Error('route mounted without an authenticate middleware');
  return caller;
}
