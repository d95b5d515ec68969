import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../../http/body.js';
import { callerOf } from '../../http/caller.js';
import type { RequestRules } from '../../http/validate.js';
import { badParameters } from '../../errors.js';
import type { HistoryPosition, MessagesService } from './service.js';

interface HistoryQuery {
  limit: number;
  from?: string;
  anchor?: 'newest';
  before?: string;
  around?: string;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function idempotencyKeyOf(value: string, given: boolean): string | undefined {
  if (!given) return undefined;
  if (!IDEMPOTENCY_KEY.test(value))
    throw badParameters('Idempotency-Key must be 1..255 visible ASCII characters');
  return value;
}

/** The position a page is read from besides the homework's `from`; at most one of the four. */
function positionOf({ from, anchor, before, around }: HistoryQuery): HistoryPosition | undefined {
  const given = [from, anchor, before, around].filter((value) => value !== undefined);
  if (given.length > 1) throw badParameters('use only one of from, anchor, before, around');
  if (anchor !== undefined) return { anchor };
  if (before !== undefined) return { before };
  if (around !== undefined) return { around };
  return undefined;
}

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
    const messageId = await service.send(
      callerOf(ctx),
      ctx.params.chat_id!,
      memberId,
      message,
      idempotencyKeyOf(ctx.get('Idempotency-Key'), 'idempotency-key' in ctx.headers),
    );
    ctx.status = 201;
    ctx.body = { message_id: messageId };
  });

  router.get('/v1/chats/:chat_id/messages', options.authenticate, async (ctx) => {
    const query = rules.query('getHistory', ctx.query) as HistoryQuery;
    const { limit, from } = query;
    const position = positionOf(query);
    const { body, cache } = position
      ? await service.readHistoryAt(callerOf(ctx), ctx.params.chat_id!, limit, position)
      : await service.readHistory(callerOf(ctx), ctx.params.chat_id!, limit, from);
    if (cache) ctx.set('X-Cache', cache);
    ctx.type = 'application/json';
    ctx.body = body;
  });
}
