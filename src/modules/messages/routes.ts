import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import { cursorParam, int, parse, text } from '../../http/validate.js';
import type { MessagesService } from './service.js';

export function messagesRoutes(
  router: Router,
  service: MessagesService,
  options: { maxBodyBytes: number; authenticate: Middleware; sendLimit?: Middleware },
): void {
  const body = jsonBody(options.maxBodyBytes);
  const sendLimit: Middleware[] = options.sendLimit ? [options.sendLimit] : [];

  router.post('/v1/chats/:chat_id/messages', options.authenticate, ...sendLimit, body, async (ctx) => {
    const { user_id: memberId } = parse(ctx.query, { user_id: text(1, 255) });
    const { message } = parse(ctx.request.body, { message: text(1, 10_000) });
    const messageId = await service.send(callerOf(ctx), ctx.params.chat_id!, memberId, message);
    ctx.status = 201;
    ctx.body = { message_id: messageId };
  });

  router.get('/v1/chats/:chat_id/messages', options.authenticate, async (ctx) => {
    const { limit } = parse(ctx.query, { limit: int(1, 1000) });
    const from = cursorParam(ctx.query.from);
    const { json, cache } = await service.readHistory(callerOf(ctx), ctx.params.chat_id!, limit, from);
    if (cache) ctx.set('X-Cache', cache);
    ctx.type = 'application/json';
    ctx.body = json;
  });
}
