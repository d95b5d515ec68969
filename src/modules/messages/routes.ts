import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import type { RequestRules } from '../../http/validate.js';
import type { MessagesService } from './service.js';

export function messagesRoutes(
  router: Router,
  service: MessagesService,
  options: { maxBodyBytes: number; rules: RequestRules; authenticate: Middleware; sendLimit?: Middleware },
): void {
  const { rules } = options;
  const body = jsonBody(options.maxBodyBytes);
  const sendLimit: Middleware[] = options.sendLimit ? [options.sendLimit] : [];

  router.post('/v1/chats/:chat_id/messages', options.authenticate, ...sendLimit, body, async (ctx) => {
    const { user_id: memberId } = rules.query('postMessage', ctx.query) as { user_id: string };
    const { message } = rules.body('postMessage', ctx.request.body) as { message: string };
    const messageId = await service.send(callerOf(ctx), ctx.params.chat_id!, memberId, message);
    ctx.status = 201;
    ctx.body = { message_id: messageId };
  });

  router.get('/v1/chats/:chat_id/messages', options.authenticate, async (ctx) => {
    const { limit, from } = rules.query('getHistory', ctx.query) as { limit: number; from?: string };
    const { json, cache } = await service.readHistory(callerOf(ctx), ctx.params.chat_id!, limit, from);
    if (cache) ctx.set('X-Cache', cache);
    ctx.type = 'application/json';
    ctx.body = json;
  });
}
