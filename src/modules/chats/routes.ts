import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { parse, text } from '../../http/validate.js';
import { callerOf } from '../../http/caller.js';
import type { ChatsService } from './service.js';

export function chatsRoutes(
  router: Router,
  service: ChatsService,
  options: { maxBodyBytes: number; authenticate: Middleware },
): void {
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/chats', options.authenticate, body, async (ctx) => {
    const input = parse(ctx.request.body, { chat_name: text(1, 255) });
    const chatId = await service.createChat(callerOf(ctx), input.chat_name);
    ctx.status = 201;
    ctx.body = { chat_id: chatId };
  });

  router.post('/v1/chats/:chat_id/users', options.authenticate, body, async (ctx) => {
    const input = parse(ctx.request.body, { user_name: text(1, 255) });
    const memberId = await service.join(callerOf(ctx), ctx.params.chat_id!, input.user_name);
    ctx.status = 201;
    ctx.body = { user_id: memberId };
  });
}
