import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import { userNotFound } from '../../errors.js';
import { cursorParam, int, optional, parse, text, time } from '../../http/validate.js';
import { isUuid } from '../../ids.js';
import type { SearchService } from './service.js';

export function searchRoutes(
  router: Router,
  service: SearchService,
  options: { maxBodyBytes: number; authenticate: Middleware },
): void {
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/chats/search', options.authenticate, body, async (ctx) => {
    const input = parse(ctx.request.body, {
      message: text(4, 1000),
      chat_id: optional(text(1, 255)),
      from_user_id: optional(text(1, 255)),
      after: optional(time()),
      before: optional(time()),
    });
    if (input.from_user_id !== undefined && !isUuid(input.from_user_id)) throw userNotFound();
    const taskId = await service.create(callerOf(ctx), {
      query: input.message,
      chatId: input.chat_id,
      memberId: input.from_user_id,
      after: input.after,
      before: input.before,
    });
    ctx.status = 201;
    ctx.body = { task_id: taskId };
  });

  router.get('/v1/chats/search/status/:task_id', options.authenticate, async (ctx) => {
    const { status, error, total } = await service.task(callerOf(ctx), ctx.params.task_id!);
    ctx.body =
      status === 'FAILED' ? { status, error } : status === 'SUCCESS' ? { status, total } : { status };
  });

  router.get('/v1/chats/search/:task_id/messages', options.authenticate, async (ctx) => {
    const { limit } = parse(ctx.query, { limit: int(1, 1000) });
    const from = cursorParam(ctx.query.from);
    ctx.body = await service.page(callerOf(ctx), ctx.params.task_id!, limit, from);
  });
}
