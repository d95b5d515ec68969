import { createHash, randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from '../infra/logger.js';
import {
  AppError,
  DependencyUnavailableError,
  internalError,
  methodNotAllowed,
  notFound,
  serviceUnavailable,
} from '../errors.js';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * What the request line logs instead of the path: chat ids are capabilities (knowing one is enough to
 * join the chat), so paths under /v1 appear as their route template, e.g. /v1/chats/:chatId/messages,
 * with a short digest of the real path to tell requests apart. Other paths hold no ids.
 */
function routeOf(ctx: Context): { route: string; pathHash?: string } {
  const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
  const route =
    typeof matched === 'string' ? matched : ctx.path.startsWith('/v1/') ? '/v1/(unmatched)' : ctx.path;
  if (route === ctx.path) return { route };
  return { route, pathHash: createHash('sha256').update(ctx.path).digest('base64url').slice(0, 8) };
}

/** Gives each request an id (kept from X-Request-Id when sane) and logs one line when it ends. */
export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      // Built only when it is written: the route's digest is work (LOG_LEVEL=warn logs only errors).
      if (ctx.status >= 500 || logger.isLevelEnabled('info')) logRequest(logger, ctx, requestId, started);
    }
  };
}

/** The request's line: error for a 5xx, else info. */
function logRequest(logger: Logger, ctx: Context, requestId: string, started: bigint): void {
  const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
  const line = {
    requestId,
    method: ctx.method,
    ...routeOf(ctx),
    status: ctx.status,
    durationMs: Math.round(durationMs * 100) / 100,
  };
  if (ctx.status >= 500) logger.error(line, 'request');
  else logger.info(line, 'request');
}

/**
 * What a failure answers: an AppError as it is, 503 when a dependency is down, else 500 (whose
 * details stay in the log).
 */
export function toAppError(error: unknown, isUnavailable: (error: unknown) => boolean): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof DependencyUnavailableError || isUnavailable(error)) return serviceUnavailable();
  return internalError();
}

/**
 * Turns every failure into the JSON error body of swagger.yml. Only AppError codes reach the client;
 * anything else is a 500 (or a 503 when a dependency is down) whose details stay in the log.
 */
export function errorHandler(logger: Logger, isUnavailable: (error: unknown) => boolean): Middleware {
  return async (ctx, next) => {
    let error: unknown;
    try {
      await next();
      // Nothing answered: no route (404), or the router knows the path but not the method.
      if (ctx.body === undefined && ctx.status === 404) error = notFound();
      if (ctx.body === undefined && (ctx.status === 405 || ctx.status === 501)) {
        error = methodNotAllowed(ctx.response.get('Allow'));
      }
    } catch (caught) {
      error = caught;
    }
    if (error === undefined) return;

    const appError = toAppError(error, isUnavailable);
    if (appError.status === 500)
      logger.error({ err: error, requestId: ctx.state.requestId }, 'unhandled error');
    ctx.status = appError.status;
    ctx.set(appError.headers);
    ctx.body = appError.detail
      ? { message: appError.code, detail: appError.detail }
      : { message: appError.code };
  };
}

/**
 * Counts the requests being handled, so a shutdown waits for them before it closes the connections
 * they use (the HTTP server's own close does the same, but the app can be served without it).
 */
export function inFlightRequests(): { middleware: Middleware; drained(ms: number): Promise<boolean> } {
  let count = 0;
  const idle = new Set<() => void>();
  return {
    middleware: async (_ctx, next) => {
      count++;
      try {
        await next();
      } finally {
        if (--count === 0) for (const resolve of [...idle]) resolve();
      }
    },
    drained(ms) {
      if (count === 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(timer);
          idle.delete(onIdle);
          resolve(ok);
        };
        const onIdle = () => done(true);
        const timer = setTimeout(() => done(false), ms);
        idle.add(onIdle);
      });
    },
  };
}
