import { STATUS_CODES } from 'node:http';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, serviceUnavailable } from '../../errors.js';
import { isUuid } from '../../ids.js';
import type { Logger } from '../../infra/logger.js';
import { dataJson, DeferredSink, type EventHub, type Frame, type Sink, type Stream } from './hub.js';
import type { TicketStore } from './tickets.js';

/** What a client may send (asyncapi.yml, client frames), small. */
const MAX_CLIENT_FRAME_BYTES = 4096;
const TYPING_EVERY_MS = 1000;

export interface WebSocketOptions {
  hub: EventHub;
  tickets: TicketStore;
  fromHeader: (authorization: string) => Promise<string | null>;
  maxBufferedBytes: number;
  logger: Logger;
  typing: (userId: string | null, chatId: string) => Promise<boolean>;
  /** Read marks (when chats keep them): the WebSocket frame does what the REST call does. */
  read?: (userId: string | null, chatId: string, messageId: string) => Promise<void>;
}

function refuse(socket: Duplex, status: number, code: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ message: code });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** The frame as JSON, its `data` serialised once for every stream that carries it. */
const wsFrame = (frame: Frame): string =>
  `{"type":${JSON.stringify(frame.type)},${frame.id ? `"id":${JSON.stringify(frame.id)},` : ''}"data":${dataJson(frame)}}`;

/** A WebSocket as a stream's sink (exported for its tests). */
export function wsSink(ws: WebSocket, maxBufferedBytes: number): Sink {
  let alive = true;
  ws.on('pong', () => (alive = true));
  return {
    transport: 'ws',
    write(frame) {
      if (ws.readyState !== ws.OPEN) return true;
      // Typing and presence past half the bound are dropped, never a reason to close (as for SSE).
      if (frame.id === undefined && ws.bufferedAmount > maxBufferedBytes / 2) return true;
      ws.send(wsFrame(frame));
      return ws.bufferedAmount <= maxBufferedBytes;
    },
    heartbeat() {
      if (ws.readyState !== ws.OPEN) return;
      // No pong since the last ping: the peer is gone without closing.
      if (!alive) {
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    },
    shutdown() {
      if (ws.readyState === ws.OPEN) ws.close(1001, 'server shutting down, reconnect');
      setTimeout(() => ws.terminate(), 1000).unref();
    },
    end() {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.terminate();
    },
    // ws has no drain event: the buffer is watched until it empties or the socket closes.
    async drained() {
      while (ws.readyState === ws.OPEN && ws.bufferedAmount > maxBufferedBytes / 2) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

/**
 * `GET /v1/ws` on the API's HTTP server: authenticated like `GET /v1/events` (header or ticket),
 * `?since=` resumes. Other upgrade requests are refused.
 */
export function webSocketUpgrade(options: WebSocketOptions): {
  attach(server: http.Server): void;
  close(): void;
} {
  const { hub, tickets } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_FRAME_BYTES });

  async function authenticate(req: http.IncomingMessage, url: URL): Promise<string | null> {
    const ticket = url.searchParams.get('ticket');
    if (ticket !== null) return tickets.redeem(ticket);
    return options.fromHeader(req.headers.authorization ?? '');
  }

  function listen(ws: WebSocket, stream: Stream): void {
    const reply = (type: string, data: Record<string, unknown>) => stream.send({ type, data });
    // Frames bypass the HTTP rate limits: one typing event per chat and second is plenty.
    const typedAt = new Map<string, number>();
    ws.on('message', (raw: Buffer) => {
      let frame: { type?: unknown; chat_id?: unknown; message_id?: unknown };
      try {
        frame = JSON.parse(raw.toString('utf8')) as typeof frame;
      } catch {
        reply('error', { message: 'bad-parameters', detail: 'a frame must be a JSON object' });
        return;
      }
      const chatId = typeof frame.chat_id === 'string' ? frame.chat_id : '';
      void (async () => {
        if (frame.type === 'ping') {
          reply('pong', {});
          return;
        }
        if (frame.type === 'typing') {
          if (Date.now() - (typedAt.get(chatId) ?? 0) < TYPING_EVERY_MS) return;
          typedAt.set(chatId, Date.now());
          if (!isUuid(chatId) || !(await options.typing(stream.userId, chatId))) {
            reply('error', { message: 'chat-not-found' });
          }
          return;
        }
        if (frame.type === 'read') {
          if (!options.read) {
            reply('error', { message: 'bad-parameters', detail: 'read marks are not kept' });
          } else if (!isUuid(chatId) || typeof frame.message_id !== 'string') {
            reply('error', { message: 'bad-parameters', detail: 'read needs chat_id and message_id' });
          } else {
            await options.read(stream.userId, chatId, frame.message_id);
          }
          return;
        }
        reply('error', { message: 'bad-parameters', detail: 'type must be ping, typing or read' });
      })().catch((error: unknown) => {
        if (error instanceof AppError) reply('error', { message: error.code });
        else options.logger.warn({ err: error }, 'websocket frame failed');
      });
    });
  }

  function upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/v1/ws') {
      refuse(socket, 404, 'not-found');
      return;
    }
    socket.on('error', () => socket.destroy());
    void (async () => {
      let userId: string | null;
      try {
        userId = await authenticate(req, url);
        hub.checkLimit(userId);
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        refuse(socket, error.status, error.code, error.headers);
        return;
      }
      // The stream's starting point is read before the handshake completes: whatever commits after
      // the client sees the socket open is delivered. An error meanwhile is an HTTP answer.
      const deferred = new DeferredSink('ws');
      let stream: Stream;
      try {
        stream = await hub.open(userId, url.searchParams.get('since') ?? undefined, deferred, {
          awaitCatchUp: false,
        });
        // Closed while it opened (too slow for what came meanwhile, or gone): an answer to retry on.
        if (stream.closed) throw serviceUnavailable();
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        refuse(socket, error.status, error.code, error.headers);
        return;
      }
      // Gone before the handshake (or refused by it): the stream goes too.
      socket.once('close', () => hub.close(stream));
      if (socket.destroyed) {
        hub.close(stream);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        deferred.attach(wsSink(ws, options.maxBufferedBytes));
        ws.once('close', () => hub.close(stream));
        if (ws.readyState === ws.OPEN) listen(ws, stream);
        else hub.close(stream);
      });
    })().catch((error: unknown) => {
      options.logger.warn({ err: error }, 'websocket upgrade failed');
      socket.destroy();
    });
  }

  return {
    attach: (server) => server.on('upgrade', upgrade),
    close: () => wss.close(),
  };
}
