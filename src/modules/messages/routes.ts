import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import { int, optional, parse, text } from '../../http/validate.js';
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
    const query = parse(ctx.query, { limit: int(1, 1000), from: optional(text(0, 65_536)) });
    const chatId = ctx.params.chat_id!;
    await service.requireReader(callerOf(ctx), chatId);
    // An empty `from` is the first page, as if it were absent.
    ctx.body = await service.historyPage(chatId, query.limit, query.from || undefined);
  });
}
