import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import type { RequestRules } from '../../http/validate.js';
import type { ChatsService } from './service.js';

export function chatsRoutes(
  router: Router,
  service: ChatsService,
  options: {
    maxBodyBytes: number;
    rules: RequestRules;
    authenticate: Middleware;
    /** For what belongs to a person: a session is required even when authentication is off. */
    authenticateUser: Middleware;
  },
): void {
  const { rules } = options;
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/chats', options.authenticate, body, async (ctx) => {
    const input = rules.body('createChat', ctx.request.body) as { chat_name: string };
    const chatId = await service.createChat(callerOf(ctx), input.chat_name);
    ctx.status = 201;
    ctx.body = { chat_id: chatId };
  });

  router.get('/v1/chats', options.authenticateUser, async (ctx) => {
    const { limit, from } = rules.query('listMyChats', ctx.query) as { limit: number; from?: string };
    const { body, cache } = await service.myChats(callerOf(ctx), limit, from);
    if (cache) ctx.set('X-Cache', cache);
    ctx.type = 'application/json';
    ctx.body = body;
  });

  router.post('/v1/chats/:chat_id/users', options.authenticate, body, async (ctx) => {
    const input = rules.body('joinChat', ctx.request.body) as { user_name: string };
    const memberId = await service.join(callerOf(ctx), ctx.params.chat_id!, input.user_name);
    ctx.status = 201;
    ctx.body = { user_id: memberId };
  });

  router.get('/v1/chats/:chat_id/users', options.authenticate, async (ctx) => {
    const { limit, from } = rules.query('listMembers', ctx.query) as { limit: number; from?: string };
    ctx.body = await service.members(callerOf(ctx), ctx.params.chat_id!, limit, from);
  });

  router.delete('/v1/chats/:chat_id/users/:user_id', options.authenticate, async (ctx) => {
    await service.leave(callerOf(ctx), ctx.params.chat_id!, ctx.params.user_id!);
    ctx.status = 204;
  });

  router.post('/v1/chats/:chat_id/read', options.authenticateUser, body, async (ctx) => {
    const { message_id: messageId } = rules.body('markRead', ctx.request.body) as { message_id: string };
    const unread = await service.markRead(callerOf(ctx), ctx.params.chat_id!, messageId);
    ctx.body = { unread };
  });
}
