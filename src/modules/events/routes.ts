import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { callerOf } from '../../http/caller.js';
import type { RequestRules } from '../../http/validate.js';
import { chatNotFound, serviceUnavailable } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { WriteBatcher } from './batcher.js';
import { DeferredSink, type EventHub, type Frame, type Sink } from './hub.js';
import { sseSink } from './sse.js';
import type { TicketStore } from './tickets.js';

export interface StreamSettings {
  maxBufferedBytes: number;
  retryMs: number;
  ticketTtlSeconds: number;
  /** Events one long-poll answer carries at most. */
  longPollMax: number;
}

/** `?ticket=` (single use) when present, else the `Authorization` header as every route. */
export function ticketOrSession(tickets: TicketStore, authenticate: Middleware): Middleware {
  return async (ctx, next) => {
    const ticket = ctx.query.ticket;
    if (typeof ticket === 'string') {
      ctx.state.caller = { userId: await tickets.redeem(ticket) };
      await next();
      return;
    }
    await authenticate(ctx, next);
  };
}

function wantsEventStream(ctx: Context): boolean {
  return (
    ctx.accepts('application/json', 'text/event-stream') === 'text/event-stream' &&
    ctx.get('Accept').includes('text/event-stream')
  );
}

export function eventsRoutes(
  router: Router,
  hub: EventHub,
  options: {
    rules: RequestRules;
    authenticate: Middleware;
    tickets: TicketStore;
    settings: StreamSettings;
    /** SSE writes are gathered by it (one socket write per stream and window). */
    writes: WriteBatcher;
    typing: (userId: string | null, chatId: string) => Promise<boolean>;
  },
): void {
  const { rules, settings, tickets } = options;

  router.post('/v1/events/tickets', options.authenticate, async (ctx) => {
    const ticket = await tickets.issue(callerOf(ctx).userId);
    ctx.status = 201;
    ctx.body = { ticket, expires_in: settings.ticketTtlSeconds };
  });

  router.get('/v1/events', ticketOrSession(tickets, options.authenticate), async (ctx) => {
    const query = rules.query('getEvents', ctx.query) as { wait?: number; since?: string };
    const wait = query.wait ?? 30;
    const { userId } = callerOf(ctx);
    if (wantsEventStream(ctx)) {
      const since = ctx.get('Last-Event-ID') || query.since;
      hub.checkLimit(userId);
      // The stream's starting point is read before the client hears it is open: whatever commits
      // after the headers reach it is delivered. An error meanwhile answers as JSON.
      const deferred = new DeferredSink('sse');
      const stream = await hub.open(userId, since, deferred, { lenient: true, awaitCatchUp: false });
      // Closed while it opened (its client too slow for what came meanwhile, or gone): an answer
      // the client can retry on, never headers followed by a dropped connection.
      if (stream.closed) throw serviceUnavailable();
      const res = ctx.res;
      ctx.req.socket.setTimeout(0);
      ctx.req.socket.setNoDelay(true);
      ctx.respond = false;
      // The stream's body ends with its connection (Connection: close) instead of being sent in
      // chunks: each write is then the frames alone, one buffer and one system call, where chunked
      // encoding adds a size line and a CRLF to every write (most of the cost of fan-out to many
      // streams). A stream is never followed by another request on its connection anyway.
      res.useChunkedEncodingByDefault = false;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        // nginx passes the stream as it comes rather than buffering it.
        'X-Accel-Buffering': 'no',
      });
      res.write(`retry: ${settings.retryMs}\n\n`);
      deferred.attach(sseSink(res, settings, options.writes));
      res.once('close', () => hub.close(stream));
      if (res.destroyed) hub.close(stream);
      return;
    }

    const frames: Frame[] = [];
    let answer: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const sink: Sink = {
      transport: 'longpoll',
      write(frame) {
        frames.push(frame);
        // Events arriving together leave in one answer.
        setImmediate(answer);
        return true;
      },
      heartbeat() {},
      shutdown: () => answer(),
      end: () => answer(),
      full: () => frames.length >= settings.longPollMax,
      drained: () => Promise.resolve(),
    };
    const stream = await hub.open(userId, query.since, sink);
    if (stream.closed) answer();
    const timer = setTimeout(answer, wait * 1000);
    ctx.req.once('close', answer);
    try {
      if (frames.length === 0 && wait > 0) await answered;
    } finally {
      clearTimeout(timer);
      ctx.req.off('close', answer);
      hub.close(stream);
    }
    ctx.body = { events: frames, last_event_id: stream.position() };
  });

  router.post('/v1/chats/:chat_id/typing', options.authenticate, async (ctx) => {
    const chatId = ctx.params.chat_id!;
    if (!isUuid(chatId) || !(await options.typing(callerOf(ctx).userId, chatId))) throw chatNotFound();
    ctx.status = 204;
  });
}
