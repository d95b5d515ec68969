import type http from 'node:http';
import type { WriteBatcher } from './batcher.js';
import { dataJson, type Frame, type Sink } from './hub.js';

const tails = new WeakMap<object, Buffer>();

/**
 * A frame's lines after its `id:` as bytes. They are the same for every stream that carries the
 * event: encoded once, only the id (a short ASCII string) is written per stream.
 */
function tailOf(frame: Frame): Buffer {
  let tail = tails.get(frame.data);
  if (tail === undefined) {
    tail = Buffer.from(`event: ${frame.type}\ndata: ${dataJson(frame)}\n\n`);
    tails.set(frame.data, tail);
  }
  return tail;
}

/** Frames waiting for their stream's next write: ids (base64url, so ASCII) and shared tails. */
class Pending {
  private ids: (string | undefined)[] = [];
  private tails: Buffer[] = [];
  bytes = 0;

  add(frame: Frame): void {
    const tail = tailOf(frame);
    this.ids.push(frame.id);
    this.tails.push(tail);
    this.bytes += tail.length + (frame.id ? frame.id.length + 5 : 0);
  }

  /** Everything gathered as one buffer (one socket write), and empty again. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.bytes);
    let offset = 0;
    this.tails.forEach((tail, index) => {
      const id = this.ids[index];
      if (id) offset += out.write(`id: ${id}\n`, offset, 'latin1');
      offset += tail.copy(out, offset);
    });
    this.clear();
    return out;
  }

  clear(): void {
    this.ids = [];
    this.tails = [];
    this.bytes = 0;
  }
}

/**
 * A Server-Sent Events response as a stream's sink. Frames are gathered and written by `writes`
 * (several events in one socket write under load); the client is too slow once what waits for it,
 * gathered or buffered by the socket, passes `maxBufferedBytes` with a stored event (typing and
 * presence past half of it are dropped instead).
 *
 * Once the headers are out (`res.writeHead` and a first `res.write`), frames go to the connection
 * itself: the body is neither chunked nor followed by another response (Connection: close), so the
 * HTTP layer has nothing to add, and skipping it saves each write its cork, tick and bookkeeping.
 */
export function sseSink(
  res: http.ServerResponse,
  settings: { maxBufferedBytes: number; retryMs: number },
  writes: WriteBatcher,
): Sink {
  const socket = res.socket;
  const open = () => socket !== null && socket.writable && !res.writableEnded;
  const pending = new Pending();
  const target = {
    flush() {
      if (pending.bytes === 0) return;
      if (open()) socket!.write(pending.take());
      else pending.clear();
    },
  };
  return {
    transport: 'sse',
    write(frame) {
      if (!open()) return true;
      const waiting = pending.bytes + socket!.writableLength;
      // Typing and presence are of the moment: past half the bound they are dropped (the rest is
      // kept for stored events), never a reason to close a stream. A user in many chats coming
      // online sends one to each, and a stream that just opened has not read anything yet.
      if (frame.id === undefined && waiting > settings.maxBufferedBytes / 2) return true;
      if (pending.bytes === 0) writes.mark(target);
      pending.add(frame);
      return pending.bytes + socket!.writableLength <= settings.maxBufferedBytes;
    },
    heartbeat() {
      target.flush();
      if (open()) socket!.write(': heartbeat\n\n');
    },
    shutdown() {
      target.flush();
      if (open()) res.end(`retry: ${settings.retryMs}\n: server shutting down, reconnect\n\n`);
    },
    end() {
      pending.clear();
      if (!res.destroyed) res.destroy();
    },
    drained: () =>
      new Promise<void>((resolve) => {
        target.flush();
        if (!open() || !socket!.writableNeedDrain) {
          resolve();
          return;
        }
        const done = () => {
          socket!.off('drain', done);
          socket!.off('close', done);
          resolve();
        };
        socket!.once('drain', done);
        socket!.once('close', done);
      }),
  };
}
