import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Gauge } from 'prom-client';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import { userNotFound } from '../../errors.js';
import type { RequestRules } from '../../http/validate.js';
import { isUuid } from '../../ids.js';
import { presentHit, presentTaskStatus } from './present.js';
import type { SearchService } from './service.js';

interface SearchBody {
  message: string;
  chat_id?: string;
  from_user_id?: string;
  after?: string;
  before?: string;
}

export function searchRoutes(
  router: Router,
  service: SearchService,
  options: {
    maxBodyBytes: number;
    rules: RequestRules;
    authenticate: Middleware;
    /** Aborted when shutdown begins: long polls answer at once. */
    stopping: AbortSignal;
    /** Long polls waiting now (/metrics). */
    waits: Gauge;
  },
): void {
  const { rules } = options;
  const body = jsonBody(options.maxBodyBytes);

  router.post('/v1/chats/search', options.authenticate, body, async (ctx) => {
    const input = rules.body('createSearch', ctx.request.body) as SearchBody;
    if (input.from_user_id !== undefined && !isUuid(input.from_user_id)) throw userNotFound();
    const taskId = await service.create(callerOf(ctx), {
      query: input.message,
      chatId: input.chat_id,
      memberId: input.from_user_id,
      after: input.after === undefined ? undefined : new Date(input.after),
      before: input.before === undefined ? undefined : new Date(input.before),
    });
    ctx.status = 201;
    ctx.body = { task_id: taskId };
  });

  router.get('/v1/chats/search/status/:task_id', options.authenticate, async (ctx) => {
    const { wait = 0 } = rules.query('getSearchStatus', ctx.query) as { wait?: number };
    // Answered early when the client goes away or the service stops.
    const gone = new AbortController();
    const abort = () => gone.abort();
    ctx.req.once('close', abort);
    if (options.stopping.aborted) abort();
    else options.stopping.addEventListener('abort', abort, { once: true });
    if (wait > 0) options.waits.inc();
    try {
      const task = await service.status(callerOf(ctx), ctx.params.task_id!, wait * 1000, gone.signal);
      ctx.body = presentTaskStatus(task);
    } finally {
      if (wait > 0) options.waits.dec();
      ctx.req.off('close', abort);
      options.stopping.removeEventListener('abort', abort);
    }
  });

  router.get('/v1/chats/search/:task_id/messages', options.authenticate, async (ctx) => {
    const { limit, from } = rules.query('getSearchResults', ctx.query) as { limit: number; from?: string };
    const page = await service.page(callerOf(ctx), ctx.params.task_id!, limit, from);
    ctx.body = {
      messages: page.hits.map(presentHit),
      ...(page.next === undefined ? {} : { next: { iterator: page.next } }),
    };
  });
}
