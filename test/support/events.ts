import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { assertClientFrame, assertMatchesAsyncApi, type Frame } from './asyncapi.js';

export type { Frame };

/** Frames received so far, and a way to wait for more with a deadline. */
export class Inbox {
  readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  /** The SSE `retry:` hint, or the WebSocket close code. */
  closeInfo: { retry?: number; retries?: number; code?: number } = {};

  push(frame: Frame): void {
    this.frames.push(frame);
    this.wake();
  }

  wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Resolves once `done(frames)` holds; rejects after `ms` with what was received. */
  async until(done: (frames: Frame[]) => boolean, ms = 15_000, what = 'frames'): Promise<Frame[]> {
    const deadline = Date.now() + ms;
    while (!done(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        // Compact: texts can be tens of kilobytes; their ends tell which messages came.
        const seen = this.frames.map((f) => {
          const text = f.data.text ?? f.data.action ?? '';
          return `${f.type}:${typeof text === 'string' ? text.slice(-12) : ''}`;
        });
        throw new Error(`timed out waiting for ${what}; got ${seen.length} frames: ${seen.join(', ')}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames;
  }

  of(type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  /** The texts of the message events received, in order. */
  texts(): string[] {
    return this.of('message').map((frame) => frame.data.text as string);
  }

  lastId(): string | undefined {
    return [...this.frames].reverse().find((frame) => frame.id)?.id;
  }
}

export function baseUrl(server: http.Server): string {
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

export interface SseClient extends Inbox {
  status: number;
  close(): void;
  /** Stops reading (the socket stays open): the server's buffer for this stream fills. */
  pause(): void;
  request: http.ClientRequest;
  /** The answer's headers. */
  headers: http.IncomingHttpHeaders;
}

/** An SSE client on `url`; resolves once the answer's headers arrived. Non-200 answers resolve too. */
export function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseClient & { body: string }> {
  return new Promise((resolve, reject) => {
    const inbox = new Inbox() as Inbox & SseClient & { body: string };
    inbox.body = '';
    let answered = false;
    const request = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      answered = true;
      inbox.status = res.statusCode ?? 0;
      inbox.headers = res.headers;
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        if (inbox.status !== 200) {
          inbox.body += chunk;
          return;
        }
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':') || line === '') continue;
            const colon = line.indexOf(':');
            const name = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
          }
          if (fields.retry !== undefined) {
            inbox.closeInfo.retry = Number(fields.retry);
            inbox.closeInfo.retries = (inbox.closeInfo.retries ?? 0) + 1;
          }
          if (fields.data === undefined) continue;
          const frame: Frame = {
            type: fields.event ?? 'message',
            data: JSON.parse(fields.data) as Frame['data'],
          };
          if (fields.id !== undefined) frame.id = fields.id;
          assertMatchesAsyncApi('events', frame);
          inbox.push(frame);
        }
      });
      // A stream the server ends abruptly (a slow reader, a shutdown) is an ending here, not an error.
      res.on('error', () => undefined);
      res.on('close', () => {
        inbox.closed = true;
        inbox.wake();
      });
      inbox.close = () => request.destroy();
      inbox.pause = () => res.pause();
      inbox.request = request;
      resolve(inbox);
    });
    request.on('error', (error) => {
      inbox.closed = true;
      inbox.wake();
      if (!answered) reject(error);
    });
  });
}

export interface WsClient extends Inbox {
  socket: WebSocket;
  send(frame: Record<string, unknown>): void;
  close(): void;
}

/** A WebSocket client; resolves once open (rejects with the refusal's status otherwise). */
export function openWs(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), { headers });
    const inbox = new Inbox() as Inbox & WsClient;
    inbox.socket = socket;
    inbox.send = (frame) => {
      assertClientFrame(frame);
      socket.send(JSON.stringify(frame));
    };
    inbox.close = () => socket.terminate();
    socket.on('message', (raw: Buffer) => {
      const frame = JSON.parse(raw.toString('utf8')) as Frame;
      assertMatchesAsyncApi('ws', frame);
      inbox.push(frame);
    });
    socket.on('close', (code) => {
      inbox.closed = true;
      inbox.closeInfo.code = code;
      inbox.wake();
    });
    socket.on('open', () => resolve(inbox));
    socket.on('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`refused with ${res.statusCode}`), { status: res.statusCode }));
      socket.terminate();
    });
    socket.on('error', (error) => reject(error));
  });
}
