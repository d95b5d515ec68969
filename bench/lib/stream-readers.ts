/**
 * SSE streams read by child processes: the fan-out step's thousand streams are clients of their
 * own, as they are in life. Read in the bench's process, every frame they carry waited behind the
 * bench's own work (the sends it times, autocannon's requests), and the other way round: the
 * latencies it measured held its own event loop's delay, and the send rate beside the streams was
 * autocannon's, slowed by the reading. The children share the machine's cores all the same.
 *
 * A timed (probe) stream parses each `message` event; a text `<label> <n> <wall ms>` (the sender's
 * clock, `wallNow()`: the processes share the machine's) gives its send→receive latency. The other
 * streams are read and dropped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** Milliseconds since the epoch, to the microsecond: comparable between processes of one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

export interface Target {
  url: string;
  headers: Record<string, string>;
  probe: boolean;
}

type Request =
  | { op: 'open'; targets: Target[]; batch: number; attempts: number }
  | { op: 'count' }
  | { op: 'take' }
  | { op: 'cpu' }
  | { op: 'close' };

interface Opened {
  statuses: number[];
  reopened: number;
}
interface Taken {
  latencies: number[];
}

// ------------------------------------------------------------------------- opening an SSE stream

/** An SSE stream read over a raw connection. */
export interface SseStream {
  status: number;
  close(): void;
}

/**
 * Opens `url` as an SSE stream; each `message` event's text goes to `onText`, else what comes is
 * read and dropped. A raw connection, not node:http: the bench reads thousands of streams on the
 * same 2 cores as the API, and an HTTP client's machinery would cost more than the reads. The
 * stream's body is neither chunked nor compressed (the API writes frames as they are).
 */
export function openStream(
  url: string,
  headers: Record<string, string>,
  onText?: (text: string) => void,
): Promise<SseStream> {
  const { hostname, port, pathname, search } = new URL(url);
  const lines = Object.entries({ Host: `${hostname}:${port}`, Accept: 'text/event-stream', ...headers }).map(
    ([name, value]) => `${name}: ${value}\r\n`,
  );
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    socket.write(`GET ${pathname}${search} HTTP/1.1\r\n${lines.join('')}\r\n`);
    socket.setEncoding('latin1');
    let head = '';
    let body = '';
    let status = 0;
    const onData = (chunk: string) => {
      if (status === 0) {
        head += chunk;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(head.slice(9, 12));
        body = head.slice(end + 4);
        head = '';
        resolve({ status, close: () => socket.destroy() });
        if (!onText) {
          socket.removeListener('data', onData);
          socket.on('data', () => undefined);
          return;
        }
      } else body += chunk;
      let end: number;
      while ((end = body.indexOf('\n\n')) >= 0) {
        const block = body.slice(0, end);
        body = body.slice(end + 2);
        if (!block.includes('event: message\n')) continue;
        // UTF-8 read as latin1: the bench's texts are ASCII.
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data) onText!((JSON.parse(data) as { text: string }).text);
      }
    };
    socket.on('data', onData);
    socket.on('error', (error) => (status === 0 ? reject(error) : undefined));
    socket.on('close', () => (status === 0 ? reject(new Error('closed before the headers')) : undefined));
  });
}

/**
 * The answers to an open that a client tries again after a pause: a 503 while a burst opens (the
 * pool busy with their first reads), and a 408 (the request's headers not read within
 * HTTP_HEADERS_TIMEOUT_MS: once, in a run whose instances were saturated by the burst).
 */
const RETRIED = new Set([408, 503]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** openStream, again after a pause (500 ms × the attempt) while the answer is one RETRIED, `attempts` times at most. */
export async function openRetrying(
  url: string,
  headers: Record<string, string>,
  attempts: number,
  onText?: (text: string) => void,
  onRetry?: () => void,
): Promise<SseStream> {
  for (let attempt = 1; ; attempt++) {
    const stream = await openStream(url, headers, onText);
    if (!RETRIED.has(stream.status) || attempt === attempts) return stream;
    stream.close();
    onRetry?.();
    await sleep(500 * attempt);
  }
}

// ---------------------------------------------------------------------------------- the child side

function child(): void {
  const streams: { close(): void }[] = [];
  let latencies: number[] = [];
  const onText = (text: string) => {
    const at = Number(text.slice(text.lastIndexOf(' ') + 1));
    if (!Number.isFinite(at) || at < 1e12) return;
    latencies.push(wallNow() - at);
  };
  const reply = (message: unknown) => process.send!(message);
  async function open({ targets, batch, attempts }: Extract<Request, { op: 'open' }>): Promise<Opened> {
    const statuses: number[] = [];
    let reopened = 0;
    for (let start = 0; start < targets.length; start += batch) {
      const opened = await Promise.all(
        targets
          .slice(start, start + batch)
          .map((target) =>
            openRetrying(
              target.url,
              target.headers,
              attempts,
              target.probe ? onText : undefined,
              () => reopened++,
            ),
          ),
      );
      for (const stream of opened) {
        streams.push(stream);
        statuses.push(stream.status);
      }
    }
    return { statuses, reopened };
  }
  process.on('message', (request: Request) => {
    switch (request.op) {
      case 'open':
        open(request).then(reply, (error: unknown) => reply({ error: String(error) }));
        return;
      case 'count':
        return reply(latencies.length);
      case 'take': {
        reply({ latencies } satisfies Taken);
        latencies = [];
        return;
      }
      case 'cpu': {
        const { user, system } = process.cpuUsage();
        return reply((user + system) / 1e6);
      }
      case 'close':
        for (const stream of streams.splice(0)) stream.close();
        return reply(true);
    }
  });
  process.send!('ready');
}

// --------------------------------------------------------------------------------- the parent side

class Reader {
  private queue: Promise<unknown> = Promise.resolve();
  constructor(readonly child: ChildProcess) {}

  /** One request at a time: each answer is the next message. */
  ask<T>(request: Request): Promise<T> {
    const next = this.queue.then(
      () =>
        new Promise<T>((resolve, reject) => {
          const onExit = () => reject(new Error('a stream reader exited'));
          this.child.once('exit', onExit);
          this.child.once('message', (message: T | { error: string }) => {
            this.child.off('exit', onExit);
            if (message && typeof message === 'object' && 'error' in message)
              reject(new Error(message.error));
            else resolve(message);
          });
          this.child.send(request);
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** `count` child processes reading streams, their work spread evenly. */
export class StreamReaders {
  private constructor(private readonly readers: Reader[]) {}

  static async start(count: number): Promise<StreamReaders> {
    const readers = await Promise.all(
      Array.from({ length: count }, async () => {
        const forked = fork(fileURLToPath(import.meta.url), ['stream-reader'], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        await new Promise<void>((resolve, reject) => {
          forked.once('message', () => resolve());
          forked.once('exit', () => reject(new Error('a stream reader exited before it was ready')));
        });
        return new Reader(forked);
      }),
    );
    return new StreamReaders(readers);
  }

  /** Opens the streams (the i-th by reader i % count), `batch` at a time in each; the statuses in order. */
  async open(targets: Target[], batch: number, attempts: number): Promise<Opened> {
    const shares = this.readers.map((_, r) => targets.filter((_, i) => i % this.readers.length === r));
    const opened = await Promise.all(
      this.readers.map((reader, r) =>
        reader.ask<Opened>({ op: 'open', targets: shares[r]!, batch, attempts }),
      ),
    );
    const statuses = targets.map(
      (_, i) => opened[i % this.readers.length]!.statuses[Math.floor(i / this.readers.length)]!,
    );
    return { statuses, reopened: opened.reduce((sum, each) => sum + each.reopened, 0) };
  }

  /** Timed events received since the last take. */
  async received(): Promise<number> {
    const counts = await Promise.all(this.readers.map((reader) => reader.ask<number>({ op: 'count' })));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** The latencies (ms) of the timed events since the last take, one per event. */
  async take(): Promise<number[]> {
    const taken = await Promise.all(this.readers.map((reader) => reader.ask<Taken>({ op: 'take' })));
    return taken.flatMap((each) => each.latencies);
  }

  /** CPU seconds (user + system) the readers have used so far. */
  async cpuSeconds(): Promise<number> {
    const each = await Promise.all(this.readers.map((reader) => reader.ask<number>({ op: 'cpu' })));
    return each.reduce((sum, seconds) => sum + seconds, 0);
  }

  async closeStreams(): Promise<void> {
    await Promise.all(this.readers.map((reader) => reader.ask({ op: 'close' })));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.readers.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill();
        await exited;
      }),
    );
  }
}

if (process.argv[2] === 'stream-reader') child();
