import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import type { RequestRules } from '../../http/validate.js';
import type { ChatsService } from './service.js';

export function chatsRoutes(
  router: Router,
  service: ChatsService,
  options: { maxBodyBytes: number; rules: RequestRules; authenticate: Middleware },
): void {
  const { rules } = options;
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/chats', options.authenticate, body, async (ctx) => {
    const input = rules.body('createChat', ctx.request.body) as { chat_name: string };
    const chatId = await service.createChat(callerOf(ctx), input.chat_name);
    ctx.status = 201;
    ctx.body = { chat_id: chatId };
  });

  router.post('/v1/chats/:chat_id/users', options.authenticate, body, async (ctx) => {
    const input = rules.body('joinChat', ctx.request.body) as { user_name: string };
    const memberId = await service.join(callerOf(ctx), ctx.params.chat_id!, input.user_name);
    ctx.status = 201;
    ctx.body = { user_id: memberId };
  });
}
