import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { badParameters, payloadTooLarge, unsupportedMediaType } from '../errors.js';

/**
 * Reads a JSON object body: no body or an empty one, malformed JSON or a non-object → 400,
 * another content type → 415, more than `limitBytes` → 413.
 */
export function jsonBody(limitBytes: number): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    jsonLimit: limitBytes,
    jsonStrict: true,
    onError: (error) => {
      const status = (error as { status?: number }).status;
      throw status === 413 ? payloadTooLarge() : badParameters('the body must be valid JSON');
    },
  });
  return async (ctx, next) => {
    // type-is answers null when the request has no body at all, false for another content type;
    // an empty body (Content-Length: 0) is "no body" whatever its type says.
    const type = ctx.request.is('json');
    if (type === null || ctx.request.length === 0) throw badParameters('a JSON body is required');
    if (type === false) throw unsupportedMediaType();
    if (ctx.request.length > limitBytes) throw payloadTooLarge();
    await parse(ctx, async () => {
      const body: unknown = ctx.request.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw badParameters('the body must be a JSON object');
      }
      await next();
    });
  };
}
